"""Layouts and signatures that connect the NIC's blocks to each other.

The MAC side (``mac/``: GMII framing, FCS, address filter, header parser and
steering match) and the host side (``dma/`` and ``csr.py``: register file, RX/TX
FIFOs, DMA queue engines) meet only here:

* RX: the MAC front end emits every received frame as a byte stream, FCS
  already stripped, with no backpressure (the wire cannot wait).  The last
  byte carries :class:`RxMeta`: whether to keep the frame (FCS/length/filter
  verdict) and where the steering table sends it.  The host side writes bytes
  into a store-and-forward packet FIFO and commits or discards the frame on its
  last byte.
* TX: the host side hands over a whole, already buffered frame as a byte
  stream with backpressure; the MAC back end adds preamble, padding, FCS and
  the inter-frame gap.
* Configuration flows from the register file to the MAC side as plain values
  (:class:`MacConfig`, an array of :class:`SteerEntry`); events flow back as
  one-cycle strobes (:class:`RxEvents`, :class:`TxEvents`) that the register
  file counts.
* Between the register file and the DMA queue engines (RX and TX alike), per
  queue: :class:`QueueConfig` in (the RXQ/TXQ registers the driver wrote),
  :class:`QueueStatus` out (HEAD and CPL, read back through the registers),
  :class:`QueueEvents` out (one-cycle strobes: PACKETS/BYTES/DROPS counters and
  the IRQ_STATUS cause), and a one-cycle ``reset`` strobe in (RXQ/TXQ
  CTRL.RESET, or the global CTRL.RESET).  Each engine owns one DMA master
  (:class:`splitnic_gateware.bus.WishboneSignature` with bursts); the top
  level arbitrates them onto the NIC's single DMA port.

Every field width comes from the spec where the spec defines it.
"""

# No "from __future__ import annotations": Amaranth reads annotations at run time.

from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from splitnic_spec import CSR_MAP, NUM_RX_QUEUES, constant

__all__ = ["RxMeta", "RxByte", "TxByte", "MacConfig", "SteerEntry", "steer_table",
           "RxEvents", "TxEvents", "rx_stream", "tx_stream", "QUEUE_BITS", "LEN_BITS",
           "INDEX_BITS", "QueueConfig", "QueueStatus", "QueueEvents", "engine_queue_ports"]

_steer_ctrl = CSR_MAP.array("STEER").register("CTRL")
#: Bits of an RX queue number (the spec's STEER CTRL.QUEUE field).
QUEUE_BITS = _steer_ctrl.field("QUEUE").width
#: Bits of a frame length (the spec's MAX_FRAME.LEN field).
LEN_BITS = CSR_MAP.register("MAX_FRAME").field("LEN").width
#: Bits of a free-running ring index (HEAD, TAIL, CPL).
INDEX_BITS = constant("INDEX_BITS")
#: Bits of a ring's log2 size (the spec's RXQ/TXQ SIZE.LOG2 field).
_LOG2_BITS = CSR_MAP.array("RXQ").register("SIZE").field("LOG2").width

assert NUM_RX_QUEUES <= 2 ** QUEUE_BITS


class RxMeta(data.Struct):
    """Verdict on a received frame, valid with its last byte."""
    #: 1: commit the frame to the RX FIFO; 0: discard it (bad FCS, runt,
    #: oversize without CTRL.KEEP_ERRORED, or refused by the address filter).
    deliver: 1
    #: RX queue chosen by the steering table (KERNEL_QUEUE when nothing matched).
    queue: QUEUE_BITS
    #: Index of the steering entry that matched, or RULE_NONE.
    rule: 8
    #: Completion.status bits (FCS_ERROR, RUNT, OVERSIZE) for kept errored frames.
    status: 8


class RxByte(data.Struct):
    """One byte of a received frame."""
    data: 8
    #: Last byte of the frame (FCS excluded); ``meta`` is valid with it.
    last: 1
    meta: RxMeta


class TxByte(data.Struct):
    """One byte of a frame to transmit."""
    data: 8
    last: 1


def rx_stream() -> stream.Signature:
    """Signature of the MAC front end's output: RX bytes, never back-pressured."""
    return stream.Signature(RxByte, always_ready=True)


def tx_stream() -> stream.Signature:
    """Signature of the MAC back end's input: TX bytes with backpressure."""
    return stream.Signature(TxByte)


class MacConfig(data.Struct):
    """MAC settings from the register file (see CTRL, MAC_ADDR_*, MAX_FRAME, MC_HASH_*)."""
    rx_en: 1
    tx_en: 1
    promisc: 1
    allmulti: 1
    broadcast: 1
    jumbo: 1
    keep_errored: 1
    #: MAX_FRAME.LEN (FCS included); the MAC clamps it to MAX_FRAME_STD unless jumbo.
    max_len: LEN_BITS
    #: Own address, byte 0 (first on the wire) in bits 7..0.
    mac_addr: 48
    #: Multicast hash filter (MC_HASH_HI:MC_HASH_LO): bit i accepts the multicast
    #: addresses whose CRC-32 has low bits i.
    mc_hash: 64


class SteerEntry(data.Struct):
    """One steering table entry (see the STEER register array)."""
    enable: 1
    match_dmac: 1
    match_ethertype: 1
    match_ip_proto: 1
    match_l4_dport: 1
    queue: QUEUE_BITS
    #: Destination MAC, byte 0 in bits 7..0.
    dmac: 48
    ethertype: 16
    ip_proto: 8
    l4_dport: 16


def steer_table(entries: int) -> data.ArrayLayout:
    """The whole steering table of ``entries`` entries as one value."""
    return data.ArrayLayout(SteerEntry, entries)


class RxEvents(data.Struct):
    """One-cycle strobes from the MAC front end, counted by the register file."""
    #: A frame with good FCS and length ended (before address filtering); ``length`` is valid.
    ok: 1
    fcs_err: 1
    runt: 1
    oversize: 1
    #: A good frame was refused by the address filter.
    filtered: 1
    #: Bytes of the frame, FCS excluded.
    length: LEN_BITS


class TxEvents(data.Struct):
    """One-cycle strobes from the MAC back end."""
    ok: 1
    #: Bytes sent, FCS and padding excluded.
    length: LEN_BITS


class QueueConfig(data.Struct):
    """One queue's settings, from its RXQ/TXQ registers to its DMA engine."""
    #: CTRL.ENABLE.
    enable: 1
    #: Device byte address of the descriptor ring (DESC_LO; DESC_HI must be 0).
    desc_base: 32
    #: Device byte address of the completion ring (CPL_LO; CPL_HI must be 0).
    cpl_base: 32
    #: SIZE.LOG2: both rings have 2**log2 entries.
    log2: _LOG2_BITS
    #: TAIL.INDEX: descriptors the driver has posted (free-running).
    tail: INDEX_BITS


class QueueStatus(data.Struct):
    """One queue's progress, from its DMA engine to its HEAD/CPL registers."""
    #: Descriptors the engine has taken (free-running).
    head: INDEX_BITS
    #: Completions the engine has written (free-running).
    cpl: INDEX_BITS


class QueueEvents(data.Struct):
    """One-cycle strobes from a DMA engine, per queue, counted by the register file."""
    #: A frame was delivered (RX) or sent (TX) and its completion written; ``length`` is valid.
    packet: 1
    #: Bytes of that frame (FCS excluded).
    length: LEN_BITS
    #: RX: a frame steered here was dropped (no buffer posted, queue disabled).
    #: TX: a descriptor completed with an error status.
    drop: 1
    #: A completion was written (an IRQ_STATUS cause).
    completion: 1


def engine_queue_ports(count: int) -> dict:
    """The per-queue ports of a DMA engine with ``count`` queues: settings and resets in, progress and events out."""
    return {"queues": In(data.ArrayLayout(QueueConfig, count)), "status": Out(data.ArrayLayout(QueueStatus, count)),
            "queue_reset": In(count), "events": Out(data.ArrayLayout(QueueEvents, count))}
