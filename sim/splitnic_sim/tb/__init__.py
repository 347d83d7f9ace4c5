"""cocotb test modules (run inside the simulator by splitnic_sim.runner)."""
