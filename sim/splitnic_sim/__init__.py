"""cocotb testbenches and models for the splitnic gateware."""
