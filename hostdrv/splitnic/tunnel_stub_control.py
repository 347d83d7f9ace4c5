"""Control of a splitnic.ko interface beside its rings: the kernel's configuration in, the NIC's state out.

Ref: spec/splitnic_spec/tunnel.py (``Config``, ``Publish``, ``NIC_COUNTERS``);
docs/registers.md, "splitnic kernel tunnel interface".

The user-space driver's event loop uses two calls, both on the handle
(``StubTunnel.fileno()``) that owns the interface:

* :func:`read_config` when ``poll()`` reports ``POLLPRI`` on the handle
  (register it with ``select.POLLIN | select.POLLPRI``): the interface's MAC
  address, MTU, flags and address lists as the kernel has them now
  (``ip link set snic0 address/mtu/promisc/allmulticast``, IPv6 and IGMP
  joins), for the driver to program into the NIC (MAC_ADDR, MAX_FRAME,
  CTRL.JUMBO, the address filter).  Reading clears ``POLLPRI`` until the
  next change.  The first poll after the handle gets its interface reports
  ``POLLPRI`` too, so the first read needs no special case.
* :func:`publish` about once a second (and on a link change): the NIC's
  counters (``Nic.stats()``'s dict), the link speed and duplex of its LINK
  register, its firmware version and bus info.  ``ethtool -S``, ``ethtool
  -i`` and ``ethtool`` then show them (``ip -s link`` counts the
  interface's own frames, not the NIC's).
* :func:`publish_rules` after every change of the NIC's steering table
  (whichever front end made it: ``splitnic rules`` or ethtool), for
  ``ethtool -n``; :func:`take_rule_request` after each :func:`read_config`
  until it returns None: what ``ethtool -N`` asked (add a rule, delete one),
  for the driver to apply (:mod:`splitnic.rule_ethtool`).

Every value is checked by the module as well; this side raises
:class:`ValueError` for what it would refuse, with the reason.
"""

from __future__ import annotations

import ctypes
import fcntl
import select
from dataclasses import dataclass, field
from typing import Mapping

from splitnic_spec import tunnel as spec

from .errors import SplitnicError

__all__ = ["KernelConfig", "read_config", "config_pending", "publish", "NicShape", "DUPLEX", "SteerRule", "RuleRequest",
           "publish_rules", "take_rule_request"]

_FLAGS = spec.CONFIG.member("flags")
_TEXT_LEN = spec.constant("TEXT_LEN")
_ADDR_MAX = spec.constant("ADDR_MAX")
_RX_USECS_NONE = spec.constant("RX_USECS_NONE")
#: Publish.duplex values by name.
DUPLEX = {None: 0, "half": 1, "full": 2}


@dataclass(frozen=True)
class KernelConfig:
    """The interface as the kernel configured it (IOC_GET_CONFIG)."""
    generation: int                 #: changes with every change of what follows
    mac: bytes                      #: 6 bytes
    mtu: int
    up: bool                        #: administratively up (``ip link set … up``)
    promisc: bool                   #: receive every frame (also set while ``uc_list`` is not empty)
    allmulti: bool                  #: receive every multicast frame
    uc_list: tuple[bytes, ...] = field(default=())   #: secondary unicast addresses
    mc_list: tuple[bytes, ...] = field(default=())   #: multicast addresses to receive
    #: The lists were longer than ADDR_MAX: treat as ``allmulti``.
    truncated: bool = False
    #: Receive interrupt moderation ``ethtool -C rx-usecs`` asked for (µs); None: never asked.
    rx_usecs: int | None = None

    @property
    def accept_all_multicast(self) -> bool:
        """Value of "the NIC must pass every multicast frame" (ALLMULTI, PROMISC or a truncated list)."""
        return self.allmulti or self.promisc or self.truncated


def _mac(word: int) -> bytes:
    return word.to_bytes(8, "little")[:6]


def read_config(fd: int) -> KernelConfig:
    """The interface's current configuration; clears the handle's ``POLLPRI`` until the next change."""
    buf = (ctypes.c_uint64 * _ADDR_MAX)()
    req = bytearray(spec.CONFIG.pack(addrs_max=_ADDR_MAX, addrs=ctypes.addressof(buf)))
    try:
        fcntl.ioctl(fd, spec.constant("IOC_GET_CONFIG"), req, True)
    except OSError as err:
        raise SplitnicError(f"/dev/splitnic IOC_GET_CONFIG: {err.strerror}") from None
    got = spec.CONFIG.unpack(req)
    flags = got["flags"]
    truncated = bool(_FLAGS.bit("TRUNCATED").get(flags))
    uc = min(got["uc_count"], _ADDR_MAX)
    mc = min(got["mc_count"], _ADDR_MAX - uc)
    return KernelConfig(
        generation=got["generation"], mac=_mac(got["mac"]), mtu=got["mtu"],
        up=bool(_FLAGS.bit("UP").get(flags)), promisc=bool(_FLAGS.bit("PROMISC").get(flags)),
        allmulti=bool(_FLAGS.bit("ALLMULTI").get(flags)),
        uc_list=tuple(_mac(buf[i]) for i in range(uc)),
        mc_list=tuple(_mac(buf[uc + i]) for i in range(mc)), truncated=truncated,
        rx_usecs=None if got["rx_usecs"] == _RX_USECS_NONE else got["rx_usecs"])


def config_pending(fd: int) -> bool:
    """True while the configuration changed since the last :func:`read_config` (``POLLPRI``)."""
    poller = select.poll()
    poller.register(fd, select.POLLPRI)
    return any(ev & select.POLLPRI for _, ev in poller.poll(0))


def _text_words(name: str, text: str) -> dict[str, int]:
    raw = text.encode("ascii", "replace")
    if len(raw) >= _TEXT_LEN or not all(0x20 <= b <= 0x7E for b in raw):
        raise ValueError(f"{name} must be printable ASCII of at most {_TEXT_LEN - 1} characters, not {text!r}")
    raw = raw.ljust(_TEXT_LEN, b"\0")
    return {f"{name}{i}": int.from_bytes(raw[8 * i:8 * i + 8], "little") for i in range(_TEXT_LEN // 8)}


@dataclass(frozen=True)
class NicShape:
    """The NIC's queue 0 ring sizes and queue counts, for ``ethtool -g`` and ``ethtool -l``."""
    rx_ring: int        #: entries of RX queue 0's ring (snic0's frames arrive there)
    tx_ring: int        #: entries of TX queue 0's ring
    ring_max: int       #: the NIC's largest ring
    rx_queues: int
    tx_queues: int


def publish(fd: int, counters: Mapping[str, int] | None, *, link_speed_mbps: int = 0,
            duplex: str | None = None, fw_version: str = "", bus_info: str = "",
            rx_usecs: int | None = None, shape: NicShape | None = None) -> None:
    """Show the NIC in the kernel's tools: its counters, link speed and duplex, firmware and bus,
    its receive interrupt moderation (``rx_usecs``, µs; None: not known) for ``ethtool -c``,
    its rings and queues (``shape``; None: not known) for ``ethtool -g``/``-l``.

    ``counters``: NIC counter name -> value, the names of
    ``splitnic_spec.tunnel.NIC_COUNTERS`` (``Nic.stats()``'s keys; missing
    ones are 0, unknown ones a :class:`ValueError`); ``None`` keeps the last
    published counters.  ``link_speed_mbps``: 0 if not known.  ``duplex``:
    ``"full"``, ``"half"`` or ``None`` (not known).
    """
    if duplex not in DUPLEX:
        raise ValueError(f"duplex must be 'full', 'half' or None, not {duplex!r}")
    if rx_usecs is not None and not 0 <= rx_usecs <= spec.constant("RX_USECS_MAX"):
        raise ValueError(f"rx_usecs must be 0..{spec.constant('RX_USECS_MAX')} µs, not {rx_usecs}")
    if not 0 <= link_speed_mbps <= spec.constant("SPEED_MAX"):
        raise ValueError(f"link speed must be 0..{spec.constant('SPEED_MAX')} Mb/s, not {link_speed_mbps}")
    words = None
    if counters is not None:
        unknown = set(counters) - set(spec.NIC_COUNTERS)
        if unknown:
            raise ValueError(f"not NIC counters of this spec: {', '.join(sorted(unknown))}")
        words = (ctypes.c_uint64 * len(spec.NIC_COUNTERS))(
            *(int(counters.get(name, 0)) & 0xFFFF_FFFF_FFFF_FFFF for name in spec.NIC_COUNTERS))
    req = bytearray(spec.PUBLISH.pack(
        count=len(spec.NIC_COUNTERS) if words is not None else 0,
        counters=ctypes.addressof(words) if words is not None else 0,
        speed=link_speed_mbps, duplex=DUPLEX[duplex], rx_usecs=_RX_USECS_NONE if rx_usecs is None else rx_usecs,
        **(vars(shape) if shape is not None else {}),
        **_text_words("fw_version", fw_version), **_text_words("bus_info", bus_info)))
    try:
        fcntl.ioctl(fd, spec.constant("IOC_PUBLISH"), req)
    except OSError as err:
        raise SplitnicError(f"/dev/splitnic IOC_PUBLISH: {err.strerror}") from None


_RULE_FLAGS = spec.RULE.member("flags")
_MATCHES = ("MATCH_DMAC", "MATCH_ETHERTYPE", "MATCH_IP_PROTO", "MATCH_L4_DPORT")


@dataclass(frozen=True)
class SteerRule:
    """A steering table entry as the module sees it (``Rule``): ``None`` is "not compared"."""
    queue: int                      #: the NIC's RX queue (ethtool's action)
    dmac: int | None = None         #: destination MAC, byte 0 in bits 7..0 (as splitnic.rules.Match)
    ethertype: int | None = None
    ip_proto: int | None = None
    dport: int | None = None

    def words(self, location: int) -> dict[str, int]:
        """The members of a ``Rule`` at ``location``."""
        values = (self.dmac, self.ethertype, self.ip_proto, self.dport)
        flags = 0
        for name, value in zip(_MATCHES, values):
            if value is not None:
                flags |= _RULE_FLAGS.bit(name).mask
        return {"location": location, "flags": flags, "queue": self.queue, "ethertype": self.ethertype or 0,
                "ip_proto": self.ip_proto or 0, "dport": self.dport or 0, "dmac": self.dmac or 0}

    @classmethod
    def from_words(cls, got: Mapping[str, int]) -> "SteerRule":
        def value(name: str, key: str) -> int | None:
            return got[key] if _RULE_FLAGS.bit(name).get(got["flags"]) else None
        return cls(queue=got["queue"], dmac=value("MATCH_DMAC", "dmac"), ethertype=value("MATCH_ETHERTYPE", "ethertype"),
                   ip_proto=value("MATCH_IP_PROTO", "ip_proto"), dport=value("MATCH_L4_DPORT", "dport"))


@dataclass(frozen=True)
class RuleRequest:
    """What ``ethtool -N`` asked (``RuleReq``): ``op`` ``"add"`` (``rule`` goes at ``location``, the end
    of the table) or ``"delete"`` (the rule at ``location``, which was ``rule`` when ethtool asked)."""
    seq: int
    op: str
    location: int
    rule: SteerRule


def publish_rules(fd: int, rules: "list[SteerRule] | tuple[SteerRule, ...]", *, capacity: int, rx_queues: int,
                  done: int = 0) -> None:
    """Show the NIC's steering table in ``ethtool -n``: ``rules`` in entry order, the table's
    ``capacity`` (0: none, ethtool -N refused), the NIC's ``rx_queues``, and ``done``: the
    ``seq`` of the last :class:`RuleRequest` handled (0: none yet)."""
    if not 0 <= capacity <= spec.constant("RULES_MAX") or len(rules) > capacity:
        raise ValueError(f"{len(rules)} rules in a table of {capacity} (at most {spec.constant('RULES_MAX')})")
    table = b"".join(spec.RULE.pack(**rule.words(i)) for i, rule in enumerate(rules))
    buf = ctypes.create_string_buffer(table, max(len(table), 1))
    req = bytearray(spec.RULE_TABLE.pack(count=len(rules), capacity=capacity, rx_queues=rx_queues,
                                         done=done & 0xFFFFFFFF, rules=ctypes.addressof(buf) if rules else 0))
    try:
        fcntl.ioctl(fd, spec.constant("IOC_PUBLISH_RULES"), req)
    except OSError as err:
        raise SplitnicError(f"/dev/splitnic IOC_PUBLISH_RULES: {err.strerror}") from None


def take_rule_request(fd: int) -> RuleRequest | None:
    """The oldest ``ethtool -N`` request not taken yet, or None."""
    buf = bytearray(spec.RULE_REQ.size)
    try:
        fcntl.ioctl(fd, spec.constant("IOC_TAKE_RULE_REQ"), buf, True)
    except BlockingIOError:
        return None
    except OSError as err:
        raise SplitnicError(f"/dev/splitnic IOC_TAKE_RULE_REQ: {err.strerror}") from None
    got = spec.RULE_REQ.unpack(buf)
    op = {spec.constant("RULE_ADD"): "add", spec.constant("RULE_DEL"): "delete"}.get(got["op"])
    if op is None:
        raise SplitnicError(f"/dev/splitnic IOC_TAKE_RULE_REQ: unknown op {got['op']}: module of another version?")
    return RuleRequest(got["seq"], op, got["location"], SteerRule.from_words(got))
