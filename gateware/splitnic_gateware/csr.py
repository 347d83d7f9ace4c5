"""The NIC's register file: every register of ``splitnic_spec.CSR_MAP`` on the CSR Wishbone slave.

Ref: docs/registers.md (generated from splitnic_spec.nic): registers, arrays
RXQ/TXQ/STEER, access types RW/RO/RC/W1C and strobe fields.

The register file is derived by walking the spec, so nothing here knows an
offset: RW registers get storage with the spec's reset value (only the bits of
declared, non-strobe fields are writable when a register has fields), RO
registers read the ID values or a queue engine's HEAD/CPL, RC registers are
32-bit wrapping counters bumped by event strobes (CYCLES in flip-flops, the
rest in a block RAM, :mod:`.counter_ram`, whose reads take one more cycle),
IRQ_STATUS is write-1-to-clear.  The configuration goes out as the structs of
:mod:`splitnic_gateware.interfaces`.

CTRL.RESET (global) clears, one cycle after the write: every queue (engines
and RXQ/TXQ registers), the steering table, every counter except CYCLES
(timestamps stay monotonic), IRQ_STATUS, IRQ_MASK and the coalescing timer.
It leaves the CSR bus, CTRL itself, MAC_ADDR_*, MC_HASH_*, MAX_FRAME, LINK, IRQ_COALESCE
and SCRATCH alone.  RXQ/TXQ CTRL.RESET resets that queue's engine state and
its TAIL.

The interrupt line is ``(IRQ_STATUS & IRQ_MASK) != 0``, but after it rises
it cannot rise again for IRQ_COALESCE.CYCLES cycles; causes that arrive
meanwhile are merged into the next rise.
"""

# No "from __future__ import annotations": Amaranth reads port annotations at run time.

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from splitnic_spec import Access, CSR_MAP

from .bus import WishboneSignature
from .counter_ram import CounterRam
from .id_block import CSR_ADDR_WIDTH, id_values
from .interfaces import MacConfig, QueueConfig, QueueEvents, QueueStatus, RxEvents, TxEvents, steer_table
from .size import FULL, NicSize

__all__ = ["Csr"]

#: Single registers (besides every RXQ/TXQ/STEER register and the counters) cleared by CTRL.RESET.
_IRQ_STATE = ("IRQ_STATUS", "IRQ_MASK")


def _byte_mask(sel):
    """Amaranth expression: the 32-bit mask of the bytes ``sel`` enables."""
    return Cat(*(sel[i].replicate(8) for i in range(4)))


class Csr(wiring.Component):
    """The register file: CSR slave ``bus`` in, configuration out, status and event strobes in.

    Ports (sized by ``size``, a :class:`~.size.NicSize`):

    * ``bus``: the CSR slave;
    * ``mac_config``, ``loopback`` (CTRL.LOOPBACK), ``steer``, ``rxq``/``txq``: configuration out;
    * ``rxq_reset``/``txq_reset``: bit q is a one-cycle strobe, reset queue q (its
      CTRL.RESET, or the global CTRL.RESET);
    * ``rxq_status``/``txq_status``, ``rxq_events``/``txq_events``, ``rx_events``/``tx_events``:
      queue progress and event strobes in;
    * ``rx_fifo_drop``: strobe, the RX engine dropped a frame because its FIFO was full;
    * ``dma_error``: strobe, the DMA firewall refused a bus cycle (STAT_DMA_ERR);
    * ``steer_hit``/``steer_rule``: strobe, a delivered frame was steered by entry
      ``steer_rule`` (RULE_NONE: no entry);
    * ``cycles``: CYCLES, for completion timestamps; ``irq``: the interrupt line.

    Registers of queues and steering entries beyond ``size`` read 0 and ignore writes.
    """

    def __init__(self, *, build_id: int = 0, clock_hz: int = 125_000_000, size: NicSize = FULL) -> None:
        self._size = size
        self._ids = id_values(build_id, clock_hz, size)
        rxn, txn = size.rx_queues, size.tx_queues
        super().__init__({
            "bus": In(WishboneSignature(CSR_ADDR_WIDTH)),
            "mac_config": Out(MacConfig),
            "loopback": Out(1),
            "steer": Out(steer_table(size.steer_entries)),
            "rxq": Out(data.ArrayLayout(QueueConfig, rxn)),
            "txq": Out(data.ArrayLayout(QueueConfig, txn)),
            "rxq_reset": Out(rxn),
            "txq_reset": Out(txn),
            "rxq_status": In(data.ArrayLayout(QueueStatus, rxn)),
            "txq_status": In(data.ArrayLayout(QueueStatus, txn)),
            "rxq_events": In(data.ArrayLayout(QueueEvents, rxn)),
            "txq_events": In(data.ArrayLayout(QueueEvents, txn)),
            "rx_events": In(RxEvents),
            "tx_events": In(TxEvents),
            "rx_fifo_drop": In(1),
            "dma_error": In(1),
            "steer_hit": In(1),
            "steer_rule": In(8),
            "cycles": Out(32),
            "irq": Out(1),
        })

    def _present(self, name: str) -> bool:
        """Whether register ``name`` (``RXQ2_TAIL``, ``CTRL`` ...) exists in this build."""
        for array in CSR_MAP.arrays:
            rest = name[len(array.name):]
            if name.startswith(array.name) and rest[:1].isdigit():
                return int(rest[:rest.index("_")]) < self._size.count(array.name)
        return True

    # -- what drives each counter -------------------------------------------------------------

    def _counter_sources(self) -> dict:
        """Value of (strobe, increment) for every RC register name except CYCLES."""
        rx, tx = self.rx_events, self.tx_events
        src = {
            "STAT_RX_OK": (rx.ok, 1), "STAT_RX_OK_BYTES": (rx.ok, rx.length),
            "STAT_RX_FCS_ERR": (rx.fcs_err, 1), "STAT_RX_RUNT": (rx.runt, 1),
            "STAT_RX_OVERSIZE": (rx.oversize, 1), "STAT_RX_FILTERED": (rx.filtered, 1),
            "STAT_RX_FIFO_DROP": (self.rx_fifo_drop, 1),
            "STAT_TX_OK": (tx.ok, 1), "STAT_TX_OK_BYTES": (tx.ok, tx.length),
            "STAT_DMA_ERR": (self.dma_error, 1),
        }
        for array, events in (("RXQ", self.rxq_events), ("TXQ", self.txq_events)):
            for q in range(self._size.count(array)):
                ev = events[q]
                src[f"{array}{q}_PACKETS"] = (ev.packet, 1)
                src[f"{array}{q}_BYTES"] = (ev.packet, ev.length)
                src[f"{array}{q}_DROPS"] = (ev.drop, 1)
        for i in range(self._size.steer_entries):
            src[f"STEER{i}_HITS"] = (self.steer_hit & (self.steer_rule == i), 1)
        return src

    def elaborate(self, platform) -> Module:
        m = Module()
        bus = self.bus
        access = Signal()             # a new bus cycle this clock
        write = Signal()
        counter_wait = Signal()       # a counter read waits for the counter RAM
        m.d.comb += [access.eq(bus.cyc & bus.stb & ~bus.ack & ~counter_wait), write.eq(access & bus.we)]
        wmask = _byte_mask(bus.sel)

        global_reset = Signal()       # the cycle after a write of CTRL.RESET (with the ack)
        cycles = Signal(32)
        m.d.sync += cycles.eq(cycles + 1)
        m.d.comb += self.cycles.eq(cycles)

        sources = self._counter_sources()
        read_value: dict[str, object] = {}     # full register name -> value read at its address
        storage: dict[str, Signal] = {}        # RW registers
        strobes: dict[tuple[str, str], Signal] = {}   # (register, field) -> one-cycle pulse
        addr_of: dict[str, int] = {}

        irq_status = Signal(32)
        status_clear = Signal(32)
        counted: list = []                     # (strobe, amount) of each counter but CYCLES, in address order
        counter_of: dict[str, int] = {}        # counter register name -> its index in ``counted``

        for name, offset, reg in CSR_MAP.all_registers():
            if not self._present(name):
                continue            # reads 0 (the Default case below), writes go nowhere
            addr_of[name] = offset // 4
            in_array = name != reg.name
            is_here = Signal(name=f"sel_{name}")
            m.d.comb += is_here.eq(write & (bus.adr == offset // 4))
            if reg.access == Access.RW:
                writable = sum(f.mask for f in reg.fields if not f.strobe) if reg.fields else 0xFFFF_FFFF
                store = Signal(32, init=reg.reset & writable, name=f"reg_{name}")
                storage[name] = store
                read_value[name] = store
                with m.If(is_here):
                    m.d.sync += store.eq((store & ~(wmask & writable)) | (bus.dat_w & wmask & writable))
                for f in reg.fields:
                    if f.strobe:
                        pulse = Signal(name=f"strobe_{name}_{f.name}")
                        m.d.sync += pulse.eq(is_here & bus.sel[f.lsb // 8] & bus.dat_w[f.lsb])
                        strobes[(name, f.name)] = pulse
                if in_array or name in _IRQ_STATE:
                    with m.If(global_reset):
                        m.d.sync += store.eq(reg.reset & writable)
            elif reg.access == Access.RO:
                if name in self._ids:
                    read_value[name] = Const(self._ids[name], 32)
                elif in_array and reg.name in ("HEAD", "CPL"):
                    array = name[:3]
                    q = int(name[3:name.index("_")])
                    status = (self.rxq_status if array == "RXQ" else self.txq_status)[q]
                    read_value[name] = status.head if reg.name == "HEAD" else status.cpl
                else:
                    raise NotImplementedError(f"read-only register {name} has no source in the register file; "
                                              f"add one to {__name__}")
            elif reg.access == Access.RC:
                if name == "CYCLES":
                    read_value[name] = cycles
                    continue
                if name not in sources:
                    raise NotImplementedError(f"counter {name} has no event source; add one to "
                                              f"{__name__}.Csr._counter_sources")
                counter_of[name] = len(counted)
                counted.append(sources[name])
            elif reg.access == Access.W1C:
                if name != "IRQ_STATUS":
                    raise NotImplementedError(f"write-1-to-clear register {name} has no source in {__name__}")
                read_value[name] = irq_status
                with m.If(is_here):
                    m.d.comb += status_clear.eq(bus.dat_w & wmask)
            else:
                raise NotImplementedError(f"register {name}: access {reg.access} is not implemented")

        # Queue resets: a queue's own CTRL.RESET or the global one; TAIL returns to 0 with it.
        for array, out in (("RXQ", self.rxq_reset), ("TXQ", self.txq_reset)):
            for q in range(self._size.count(array)):
                pulse = strobes[(f"{array}{q}_CTRL", "RESET")]
                m.d.comb += out[q].eq(pulse | global_reset)
                with m.If(pulse):
                    m.d.sync += storage[f"{array}{q}_TAIL"].eq(0)
        m.d.comb += global_reset.eq(strobes[("CTRL", "RESET")])

        # The counters live in a block RAM (see counter_ram): a read of one is answered when the
        # RAM's flusher has its total, one cycle later than other registers.
        m.submodules.counters = counters = CounterRam(counted)
        counter_addr = Signal()
        with m.Switch(bus.adr):
            for name, index in counter_of.items():
                with m.Case(addr_of[name]):
                    m.d.comb += [counter_addr.eq(1), counters.read_index.eq(index)]
        m.d.comb += [counters.clear.eq(global_reset), counters.read_request.eq(access & ~bus.we & counter_addr)]
        with m.If(counters.read_request):
            m.d.sync += counter_wait.eq(1)
        with m.If(counters.read_done):
            m.d.sync += [counter_wait.eq(0), bus.ack.eq(1), bus.dat_r.eq(counters.read_value)]
        with m.Else():
            m.d.sync += bus.ack.eq(access & ~counters.read_request)

        # Other reads: registered, answered with the ack.
        with m.If(access):
            with m.Switch(bus.adr):
                for name, value in read_value.items():
                    with m.Case(addr_of[name]):
                        m.d.sync += bus.dat_r.eq(value)
                with m.Default():
                    m.d.sync += bus.dat_r.eq(0)

        self._outputs(m, storage)
        self._irq(m, storage, irq_status, status_clear, global_reset)
        return m

    # -- configuration out ----------------------------------------------------------------------

    def _outputs(self, m: Module, storage: dict) -> None:
        def field(name: str, field_name: str):
            reg = CSR_MAP.register(name) if name in {r.name for r in CSR_MAP.registers} else None
            if reg is None:
                array_name = "".join(ch for ch in name.split("_")[0] if not ch.isdigit())
                reg = CSR_MAP.array(array_name).register(name.split("_", 1)[1])
            f = reg.field(field_name)
            return storage[name][f.lsb:f.lsb + f.width]

        def mac(lo: str, hi: str):
            return Cat(storage[lo], field(hi, "BYTES"))

        cfg = self.mac_config
        for member, fname in (("rx_en", "RX_EN"), ("tx_en", "TX_EN"), ("promisc", "PROMISC"),
                              ("allmulti", "ALLMULTI"), ("broadcast", "BROADCAST"), ("jumbo", "JUMBO"),
                              ("keep_errored", "KEEP_ERRORED")):
            m.d.comb += getattr(cfg, member).eq(field("CTRL", fname))
        m.d.comb += [cfg.max_len.eq(field("MAX_FRAME", "LEN")), cfg.mac_addr.eq(mac("MAC_ADDR_LO", "MAC_ADDR_HI")),
                     cfg.mc_hash.eq(Cat(storage["MC_HASH_LO"], storage["MC_HASH_HI"])),
                     self.loopback.eq(field("CTRL", "LOOPBACK"))]

        for array, out in (("RXQ", self.rxq), ("TXQ", self.txq)):
            for q in range(self._size.count(array)):
                p = f"{array}{q}_"
                m.d.comb += [out[q].enable.eq(field(p + "CTRL", "ENABLE")),
                             out[q].desc_base.eq(storage[p + "DESC_LO"]),
                             out[q].cpl_base.eq(storage[p + "CPL_LO"]),
                             out[q].log2.eq(field(p + "SIZE", "LOG2")),
                             out[q].tail.eq(field(p + "TAIL", "INDEX"))]

        for i in range(self._size.steer_entries):
            p = f"STEER{i}_"
            e = self.steer[i]
            for member, fname in (("enable", "ENABLE"), ("match_dmac", "MATCH_DMAC"),
                                  ("match_ethertype", "MATCH_ETHERTYPE"), ("match_ip_proto", "MATCH_IP_PROTO"),
                                  ("match_l4_dport", "MATCH_L4_DPORT"), ("queue", "QUEUE")):
                m.d.comb += getattr(e, member).eq(field(p + "CTRL", fname))
            m.d.comb += [e.dmac.eq(mac(p + "DMAC_LO", p + "DMAC_HI")),
                         e.ethertype.eq(field(p + "ETHERTYPE", "VALUE")),
                         e.ip_proto.eq(field(p + "IP_PROTO", "VALUE")),
                         e.l4_dport.eq(field(p + "L4_DPORT", "VALUE"))]

    # -- interrupts -------------------------------------------------------------------------------

    def _irq(self, m: Module, storage: dict, irq_status, status_clear, global_reset) -> None:
        status_reg = CSR_MAP.register("IRQ_STATUS")
        rx_f, tx_f, link_f = (status_reg.field(n) for n in ("RX", "TX", "LINK"))
        causes = Signal(32)
        bits = []
        for q in range(self._size.rx_queues):
            bits.append((rx_f.lsb + q, self.rxq_events[q].completion))
        for q in range(self._size.tx_queues):
            bits.append((tx_f.lsb + q, self.txq_events[q].completion))
        link = storage["LINK"]
        link_seen = Signal(32, init=CSR_MAP.register("LINK").reset)
        m.d.sync += link_seen.eq(link)
        bits.append((link_f.lsb, link != link_seen))
        for bit, cause in bits:
            m.d.comb += causes[bit].eq(cause)

        holdoff = Signal(CSR_MAP.register("IRQ_COALESCE").field("CYCLES").width)
        pending = Signal()
        m.d.comb += pending.eq((irq_status & storage["IRQ_MASK"]) != 0)
        m.d.sync += irq_status.eq((irq_status & ~status_clear) | causes)
        # Level interrupt: once up it stays up while anything is pending; it may only rise
        # when the hold-off time since the previous rise has run out.
        rise = Signal()
        m.d.comb += rise.eq(pending & ~self.irq & (holdoff == 0))
        m.d.sync += self.irq.eq(pending & (self.irq | (holdoff == 0)))
        with m.If(rise):
            m.d.sync += holdoff.eq(storage["IRQ_COALESCE"][:len(holdoff)])
        with m.Elif(holdoff != 0):
            m.d.sync += holdoff.eq(holdoff - 1)
        with m.If(global_reset):
            m.d.sync += [irq_status.eq(0), holdoff.eq(0), self.irq.eq(0)]
