"""The user-space driver of one splitnic NIC.

Ref: docs/registers.md (generated from spec/splitnic_spec/nic.py): the ID
block, CTRL, MAC_ADDR, LINK, STAT_*, RXQ/TXQ, STEER.

``Nic(link)`` probes the ID block and refuses a NIC whose magic, major
version or spec hash differ from this driver's, naming both values.  The
driver masks every interrupt cause at reset; the kernel path enables the ones it
waits for (:mod:`splitnic.irq`), and opening a queue leaves them.  Statistics are 32-bit
wrapping counters in the NIC, widened to 64 bits here on every read.
"""

from __future__ import annotations

import logging
import zlib
from typing import Iterable

import splitnic_spec as spec
from splitnic_spec import CSR_MAP

from .errors import SplitnicError
from .link import Link, open_link
from .ring import wait_strobe
from .rx_queue import RxQueue
from .tx_queue import TxQueue

__all__ = ["Nic", "open", "format_mac"]

log = logging.getLogger(__name__)

_CTRL = CSR_MAP.register("CTRL")
_LINK = CSR_MAP.register("LINK")
_VERSION = CSR_MAP.register("ID_VERSION")
_FEATURES = CSR_MAP.register("ID_FEATURES")
_RXQ, _TXQ, _STEER = CSR_MAP.array("RXQ"), CSR_MAP.array("TXQ"), CSR_MAP.array("STEER")
_STEER_ORDER = ("DMAC_LO", "DMAC_HI", "ETHERTYPE", "IP_PROTO", "L4_DPORT")


def _off(name: str) -> int:
    return CSR_MAP.register(name).offset


def format_mac(mac: bytes) -> str:
    """``02:00:00:00:00:01`` form of a 6-byte address."""
    return ":".join(f"{b:02x}" for b in mac)


def _counter_registers(rx_queues: int, tx_queues: int, steer_entries: int) -> list[tuple[str, int]]:
    """``(name, offset)`` of every counter a build with these sizes has."""
    regs = [(r.name.removeprefix("STAT_").lower(), r.offset) for r in CSR_MAP.registers if r.name.startswith("STAT_")]
    for arr, n in ((_RXQ, rx_queues), (_TXQ, tx_queues)):
        for q in range(n):
            for name in ("PACKETS", "BYTES", "DROPS"):
                regs.append((f"{arr.name.lower()}{q}_{name.lower()}", arr.offset(q, name)))
    for e in range(steer_entries):
        regs.append((f"steer{e}_hits", _STEER.offset(e, "HITS")))
    return sorted(regs, key=lambda t: t[1])


def _runs(regs: list[tuple[str, int]]) -> list[tuple[int, list[str]]]:
    """Group registers into runs of consecutive offsets (one burst read each)."""
    runs: list[tuple[int, list[str]]] = []
    for name, off in regs:
        if runs and runs[-1][0] + 4 * len(runs[-1][1]) == off:
            runs[-1][1].append(name)
        else:
            runs.append((off, [name]))
    return runs


class Nic:
    """One splitnic NIC reached through ``link``."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.bus = link.bus
        self._queues: dict[tuple[str, int], RxQueue | TxQueue] = {}
        self._last: dict[str, int] = {}
        self._wide: dict[str, int] = {}
        self._probe()

    # ---------------------------------------------------------------- identity
    def _probe(self) -> None:
        where = self.link.description
        magic = self.bus.read32(_off("ID_MAGIC"))
        if magic != spec.ID_MAGIC_VALUE:
            raise SplitnicError(f"{where}: not a splitnic NIC: ID_MAGIC reads {magic:#010x}, expected "
                                f"{spec.ID_MAGIC_VALUE:#010x} ('SNIC'); check --link")
        version = self.bus.read32(_off("ID_VERSION"))
        major, minor = _VERSION.field("MAJOR").get(version), _VERSION.field("MINOR").get(version)
        if major != spec.VERSION_MAJOR:
            raise SplitnicError(f"{where}: NIC implements spec {major}.{minor}, this driver spec "
                                f"{spec.VERSION_MAJOR}.{spec.VERSION_MINOR} (major versions must match); "
                                "use a driver and gateware from the same tree")
        spec_hash = self.bus.read32(_off("ID_SPEC_HASH"))
        if spec_hash != spec.SPEC_HASH:
            raise SplitnicError(f"{where}: NIC spec hash {spec_hash:#010x}, driver spec hash {spec.SPEC_HASH:#010x}; "
                                "rebuild the gateware (or the driver) from the same spec/splitnic_spec/nic.py")
        self.version = (major, minor)
        self.spec_hash = spec_hash
        self.build_id = self.bus.read32(_off("ID_BUILD"))
        features = self.bus.read32(_off("ID_FEATURES"))
        self.num_rx_queues = _FEATURES.field("RX_QUEUES").get(features)
        self.num_tx_queues = _FEATURES.field("TX_QUEUES").get(features)
        self.num_steer_entries = _FEATURES.field("STEER_ENTRIES").get(features)
        # A build may have fewer queues and entries than the map has room for (ID_FEATURES), never more.
        for what, have, room, least in (("RX queues", self.num_rx_queues, spec.NUM_RX_QUEUES, 1),
                                        ("TX queues", self.num_tx_queues, spec.NUM_TX_QUEUES, 1),
                                        ("steering entries", self.num_steer_entries, spec.NUM_STEER_ENTRIES, 0)):
            if not least <= have <= room:
                raise SplitnicError(f"{where}: ID_FEATURES reports {have} {what}, the register map has room "
                                    f"for {least}..{room}; the gateware is broken or not a splitnic build")
        self._counter_runs = _runs(_counter_registers(self.num_rx_queues, self.num_tx_queues,
                                                      self.num_steer_entries))
        self.clock_hz = self.bus.read32(_off("CLOCK_HZ"))
        log.info("%s: splitnic spec %d.%d hash %#010x build %#010x, %d RX / %d TX queues", where, major, minor,
                 spec_hash, self.build_id, self.num_rx_queues, self.num_tx_queues)

    def info(self) -> dict:
        """The ID block, link state and link kind, as a dict."""
        up, speed, duplex = self.link_state()
        return {
            "link": self.link.description, "link_kind": self.link.kind, "zero_copy": self.link.zero_copy,
            "spec_version": f"{self.version[0]}.{self.version[1]}", "spec_hash": f"{self.spec_hash:#010x}",
            "build_id": f"{self.build_id:#010x}", "rx_queues": self.num_rx_queues, "tx_queues": self.num_tx_queues,
            "steer_entries": self.num_steer_entries, "clock_hz": self.clock_hz, "mac": format_mac(self.mac),
            "link_up": up, "speed_mbps": speed, "full_duplex": duplex,
        }

    # ---------------------------------------------------------------- control
    def _ctrl_update(self, **fields: int) -> None:
        value = self.bus.read32(_CTRL.offset)
        for name, v in fields.items():
            f = _CTRL.field(name)
            value = (value & ~f.mask) | f.put(int(v))
        self.bus.write32(_CTRL.offset, value)

    def reset(self) -> None:
        """Reset every queue, the steering table, the counters and IRQ state (CTRL.RESET); every IRQ cause masked."""
        for queue in list(self._queues.values()):
            queue.close()
        value = self.bus.read32(_CTRL.offset) & ~_CTRL.field("RESET").mask
        self.bus.write32(_CTRL.offset, value | _CTRL.pack(RESET=1))
        wait_strobe(self.bus, _CTRL.offset, _CTRL.field("RESET").mask, "NIC reset")
        self.bus.write32(_off("IRQ_MASK"), 0)
        self._last.clear()
        self._wide.clear()

    def restarted(self) -> None:
        """The NIC was reset under the driver (its board was power-cycled; the eth link re-attached):
        its counters start from 0 again, so the widened ones carry on from there, not from the old raw
        values.  Queues and registers are the caller's to set up again."""
        self._last.clear()

    def enable(self, rx: bool | None = None, tx: bool | None = None) -> None:
        """Set CTRL.RX_EN / CTRL.TX_EN (None: leave as is)."""
        fields = {k: v for k, v in (("RX_EN", rx), ("TX_EN", tx)) if v is not None}
        if fields:
            self._ctrl_update(**fields)

    def set_loopback(self, on: bool) -> None:
        """CTRL.LOOPBACK: transmitted frames are received instead of sent."""
        self._ctrl_update(LOOPBACK=on)

    def set_filters(self, promisc: bool | None = None, allmulti: bool | None = None,
                    broadcast: bool | None = None) -> None:
        """Address filter: accept everything / every multicast / broadcast (None: leave as is)."""
        fields = {k: v for k, v in (("PROMISC", promisc), ("ALLMULTI", allmulti), ("BROADCAST", broadcast))
                  if v is not None}
        if fields:
            self._ctrl_update(**fields)

    def set_multicast(self, addresses: Iterable[bytes]) -> None:
        """Accept exactly the multicast ``addresses`` (and the others sharing their hash bits) without
        ALLMULTI: program MC_HASH_LO/HI (the low 6 bits of each address's CRC-32 pick its bit)."""
        bits = 0
        for address in addresses:
            if len(address) != 6:
                raise ValueError(f"a MAC address has 6 bytes, not {len(address)}")
            bits |= 1 << (zlib.crc32(address) % spec.constant("MC_HASH_BITS"))
        self.bus.write32(_off("MC_HASH_LO"), bits & 0xFFFFFFFF)
        self.bus.write32(_off("MC_HASH_HI"), bits >> 32)

    @property
    def mac(self) -> bytes:
        """Value of the NIC's MAC address (6 bytes, wire order)."""
        lo = self.bus.read32(_off("MAC_ADDR_LO"))
        hi = self.bus.read32(_off("MAC_ADDR_HI")) & CSR_MAP.register("MAC_ADDR_HI").field("BYTES").mask
        return lo.to_bytes(4, "little") + hi.to_bytes(2, "little")

    @mac.setter
    def mac(self, mac: bytes) -> None:
        if len(mac) != 6:
            raise ValueError(f"a MAC address has 6 bytes, not {len(mac)}")
        self.bus.write32(_off("MAC_ADDR_LO"), int.from_bytes(mac[:4], "little"))
        self.bus.write32(_off("MAC_ADDR_HI"), int.from_bytes(mac[4:], "little"))

    def link_state(self) -> tuple[bool, int, bool]:
        """(up, Mb/s, full duplex) from the LINK register."""
        v = self.bus.read32(_LINK.offset)
        return (bool(_LINK.field("UP").get(v)), spec.LINK_SPEED_MBPS.get(_LINK.field("SPEED").get(v), 0),
                bool(_LINK.field("FULL_DUPLEX").get(v)))

    # ---------------------------------------------------------------- counters
    def stats(self) -> dict[str, int]:
        """Every NIC counter, widened to 64 bits (call at least once per 2**32 events)."""
        for offset, names in self._counter_runs:
            for name, raw in zip(names, self.bus.read_burst(offset, len(names))):
                self._wide[name] = self._wide.get(name, 0) + ((raw - self._last.get(name, 0)) & 0xFFFFFFFF)
                self._last[name] = raw
        return dict(self._wide)

    # ---------------------------------------------------------------- queues
    def _claim(self, kind: str, q: int, limit: int) -> None:
        if not 0 <= q < limit:
            raise SplitnicError(f"{kind} queue must be 0..{limit - 1}, not {q}")
        if (kind, q) in self._queues:
            raise SplitnicError(f"{kind} queue {q} is already open in this process; close it first")

    def rx_queue(self, q: int, ring_log2: int = 8, buf_size: int = 2048, nbufs: int | None = None) -> RxQueue:
        """Set up RX queue ``q`` (rings, buffers posted, enabled) and enable receiving (CTRL.RX_EN)."""
        self._claim("RX", q, self.num_rx_queues)
        queue = RxQueue(self, q, ring_log2, buf_size, nbufs)
        self._queues[("RX", q)] = queue
        self.enable(rx=True)
        return queue

    def tx_queue(self, q: int, ring_log2: int = 8, buf_size: int = 2048, nbufs: int | None = None) -> TxQueue:
        """Set up TX queue ``q`` (rings, buffers, enabled) and enable transmitting (CTRL.TX_EN)."""
        self._claim("TX", q, self.num_tx_queues)
        queue = TxQueue(self, q, ring_log2, buf_size, nbufs)
        self._queues[("TX", q)] = queue
        self.enable(tx=True)
        return queue

    def remade(self, queue: RxQueue | TxQueue) -> RxQueue | TxQueue:
        """``queue`` closed and set up again from nothing with the same ring size, buffer size and
        number of buffers: fresh, consistent rings (after the NIC was reset under the driver, when
        the old rings no longer match the NIC's indices); frames in them are lost."""
        ring = queue.ring
        shape = {"ring_log2": ring.log2, "buf_size": ring.buf_size, "nbufs": ring.nbufs}
        queue.close()
        make = self.tx_queue if isinstance(queue, TxQueue) else self.rx_queue
        return make(queue.index, **shape)

    def _forget(self, queue: RxQueue | TxQueue) -> None:
        key = ("TX" if isinstance(queue, TxQueue) else "RX", queue.index)
        if self._queues.get(key) is queue:
            del self._queues[key]

    # ---------------------------------------------------------------- steering
    def steer(self, index: int, values: dict[str, int] | None) -> None:
        """Program steering entry ``index`` (values from RuleSet.entry_values; None disables it).

        The entry is disabled first, its match values written, and CTRL with
        ENABLE written last, so the NIC never matches a half-written entry.
        """
        bus = self.bus
        bus.write32(_STEER.offset(index, "CTRL"), 0)
        if not values or not values.get("CTRL"):
            return
        unknown = set(values) - {"CTRL", *_STEER_ORDER}
        if unknown:
            raise ValueError(f"steering entry values are CTRL and {', '.join(_STEER_ORDER)}, not {sorted(unknown)}")
        for name in _STEER_ORDER:
            bus.write32(_STEER.offset(index, name), values.get(name, 0))
        bus.write32(_STEER.offset(index, "CTRL"), values["CTRL"])

    def set_rules(self, rules: "Iterable[dict[str, int] | None]") -> None:
        """Program the whole steering table in order; entries beyond ``rules`` are disabled."""
        values = list(rules)
        if len(values) > self.num_steer_entries:
            raise SplitnicError(f"{len(values)} steering rules, the NIC has {self.num_steer_entries} entries")
        for i in range(self.num_steer_entries):
            self.steer(i, values[i] if i < len(values) else None)

    # ---------------------------------------------------------------- teardown
    def close(self) -> None:
        """Disable this process's queues and detach from the link."""
        for queue in list(self._queues.values()):
            queue.close()
        self.link.close()

    def __enter__(self) -> "Nic":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open(link: str) -> Nic:  # noqa: A001 - splitnic.open(link) reads naturally
    """Attach the NIC named by ``link`` (``sim:PATH`` or ``mmio:PATH``) and probe it."""
    lnk = open_link(link)
    try:
        return Nic(lnk)
    except BaseException:
        lnk.close()
        raise
