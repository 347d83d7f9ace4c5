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

__all__ = ["KernelConfig", "read_config", "config_pending", "publish", "DUPLEX"]

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


def publish(fd: int, counters: Mapping[str, int] | None, *, link_speed_mbps: int = 0,
            duplex: str | None = None, fw_version: str = "", bus_info: str = "",
            rx_usecs: int | None = None) -> None:
    """Show the NIC in the kernel's tools: its counters, link speed and duplex, firmware and bus,
    its receive interrupt moderation (``rx_usecs``, µs; None: not known) for ``ethtool -c``.

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
        **_text_words("fw_version", fw_version), **_text_words("bus_info", bus_info)))
    try:
        fcntl.ioctl(fd, spec.constant("IOC_PUBLISH"), req)
    except OSError as err:
        raise SplitnicError(f"/dev/splitnic IOC_PUBLISH: {err.strerror}") from None
