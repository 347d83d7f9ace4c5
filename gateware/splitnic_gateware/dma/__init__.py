"""The NIC's DMA side: queue engines that move frames between host memory and the MAC.

Ref: docs/registers.md, RXQ/TXQ, Descriptor and Completion (generated from
splitnic_spec.nic); the engine <-> register file interface is in
:mod:`splitnic_gateware.interfaces`.

* :mod:`.rx_engine` — RX queues: MAC frames into posted buffers.
* :mod:`.tx_engine` — TX queues: posted frames to the MAC.
* :mod:`.arbiter` — shares the NIC's one DMA Wishbone master between the engines.
* :mod:`.firewall` — lets that master reach only the windows it is given (the board's NIC).
"""
