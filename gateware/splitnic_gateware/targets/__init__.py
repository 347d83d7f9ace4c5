"""LiteX SoCs around the splitnic NIC core: the Colorlight i5 and i9 boards and their simulation.

Ref: docs/architecture.md, "Boards"; docs/hardware.md.

The board's address map (where the NIC's registers and DMA memory sit on the
SoC bus) is a fact the driver needs too: it lives in :mod:`splitnic_spec.board`.

* :mod:`.nic_core` -- the Amaranth NIC, converted to Verilog, as a LiteX module;
* :mod:`.gmii_bridge` -- the NIC's GMII (system clock) to and from a LiteEth PHY
  (the PHY's 125 MHz clocks); :mod:`.async_fifo` its transmit FIFO, whose read side
  keeps its pointer logic in registers to run at 125 MHz;
* :mod:`.soc` -- the design both targets share: NIC, DMA block RAM, Etherbone;
* :mod:`.colorlight` -- the boards (i5, i9): clocking, the two RGMII PHYs, the build;
* :mod:`.sim` -- the same SoC on LiteX's Verilator simulator, Etherbone over a TAP.
"""
