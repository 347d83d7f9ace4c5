"""The ``stub`` kernel tunnel: splitnic.ko's ``/dev/splitnic`` with mmap'd rings.

Ref: spec/splitnic_spec/tunnel.py (ioctls, shared area layout, ring
protocol); docs/registers.md, "splitnic kernel tunnel interface".

Every number here (ioctl requests, structure layouts, control-page offsets,
limits) comes from :mod:`splitnic_spec.tunnel`.  Ring accesses are plain
loads and stores on the mapping: on x86 (TSO) stores are seen in program
order and loads are not reordered with older loads, which is the ordering
the ring protocol needs (frame and entry before the index that publishes
them; the index before the frame it covers).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import mmap
import os
import struct
from typing import Mapping, Sequence

from splitnic_spec import tunnel as spec

from ._cffi import ffi, lib
from . import tunnel_stub_control as control
from .errors import SplitnicError
from .tunnel import STUB_DEVICE, KernelTunnel, format_mac

__all__ = ["StubTunnel", "StubInfo", "stub_info"]

log = logging.getLogger(__name__)

_U32 = struct.Struct("<I")
_K2U_PROD = spec.constant("CTRL_K2U_PROD")
_K2U_CONS = spec.constant("CTRL_K2U_CONS")
_U2K_PROD = spec.constant("CTRL_U2K_PROD")
_U2K_CONS = spec.constant("CTRL_U2K_CONS")
_DESC_SIZE = spec.DESC.size
# The C side (struct snic_kring) reads Desc as two little-endian u32: len, then flags.
assert spec.DESC.format == "<II" and spec.DESC.offset_of("len") == 0, spec.DESC.format
#: Frames one recv_burst call copies out at most.
_RECV_BURST = 256

#: Default ring sizes: 256 entries each way, 2 KiB slots (MTU up to 2026).
DEFAULT_LOG2 = 8


class StubInfo(dict):
    """IOC_INFO's answer: ``version``, ``spec_hash``, ``nic_spec_hash``, ``features``."""


def _ioctl(fd: int, request: str, arg: bytes | bytearray | int = 0, what: str = "") -> bytes | int:
    try:
        if isinstance(arg, bytearray):
            fcntl.ioctl(fd, spec.constant(request), arg, True)
            return bytes(arg)
        return fcntl.ioctl(fd, spec.constant(request), arg)
    except OSError as err:
        raise _ioctl_error(request, err, what) from None


def _ioctl_error(request: str, err: OSError, what: str) -> SplitnicError:
    hints = {
        (errno.EBUSY, "IOC_ATTACH"): "another driver process has it attached; stop that process first",
        (errno.EEXIST, "IOC_CREATE"): "the name is taken by another interface",
        (errno.EINVAL, "IOC_SETUP_RINGS"): "ring sizes or slot size out of range, or the MTU does not fit the slot",
        (errno.EINVAL, "IOC_CREATE"): "bad name, MAC address or MTU",
        (errno.EINVAL, "IOC_ATTACH"): "bad name, MAC address or MTU",
    }
    if err.errno == errno.ENODEV and request not in ("IOC_CREATE", "IOC_ATTACH"):
        hints[err.errno, request] = "the interface was deleted (ip link del, or the end of its network namespace)"
    hint = hints.get((err.errno, request), "")
    return SplitnicError(f"{STUB_DEVICE} {request}{' ' + what if what else ''}: {err.strerror}"
                         f"{'; ' + hint if hint else ''}")


def _open_device() -> int:
    try:
        return os.open(STUB_DEVICE, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SplitnicError(f"no {STUB_DEVICE}: load the stub module (insmod build/kmod/<kernel>/splitnic.ko, "
                            "see hostdrv/kmod/Makefile) or use --kernel tap") from None
    except PermissionError:
        raise SplitnicError(f"cannot open {STUB_DEVICE}: permission denied (run as root)") from None


def stub_info(fd: int) -> StubInfo:
    """IOC_INFO of an open ``/dev/splitnic``."""
    return StubInfo(spec.INFO.unpack(_ioctl(fd, "IOC_INFO", bytearray(spec.INFO.size))))


def _check_info(info: StubInfo) -> None:
    if info["spec_hash"] != spec.SPEC_HASH:
        raise SplitnicError(
            f"splitnic.ko implements tunnel spec {info['version'] >> 16}.{info['version'] & 0xffff} "
            f"hash {info['spec_hash']:#010x}, this driver expects {spec.VERSION_MAJOR}.{spec.VERSION_MINOR} "
            f"hash {spec.SPEC_HASH:#010x}: rebuild and reload the module from this tree")


def _if_req(name: str, mac: bytes | None, mtu: int) -> bytearray:
    raw = name.encode()
    if len(raw) >= 16:
        raise SplitnicError(f"interface name must be at most 15 bytes, not {name!r}")
    raw = raw.ljust(16, b"\0")
    return bytearray(spec.IF_REQ.pack(
        name_lo=int.from_bytes(raw[:8], "little"), name_hi=int.from_bytes(raw[8:], "little"),
        mac=int.from_bytes(mac, "little") if mac else 0, mtu=mtu))


class StubTunnel(KernelTunnel):
    """An interface of splitnic.ko; see :class:`splitnic.tunnel.KernelTunnel`."""

    kind = "stub"

    def __init__(self, fd: int, name: str, mac: bytes, mtu: int, ifindex: int,
                 rings: dict[str, int], k2u_log2: int, u2k_log2: int, slot_size: int,
                 area: "mmap.mmap | None" = None) -> None:
        super().__init__(name, mac, mtu)
        self._fd = fd
        self.ifindex = ifindex
        self._area = area if area is not None else mmap.mmap(fd, rings["area_size"], mmap.MAP_SHARED,
                                                                  mmap.PROT_READ | mmap.PROT_WRITE)
        self._slot = slot_size
        # The ring state lives in C (hostdrv/splitnic/_hotpath.c): recv_burst/send_burst here and
        # the kernel path's C pump (splitnic.tunnel_pump) move the same indices.
        base = ffi.cast("uint8_t *", ffi.from_buffer(self._area))
        self._base = base
        self.k2u = self._kring(base, rings["k2u_desc"], rings["k2u_data"], k2u_log2, _K2U_PROD, _K2U_CONS,
                               own=_K2U_CONS)
        self.u2k = self._kring(base, rings["u2k_desc"], rings["u2k_data"], u2k_log2, _U2K_PROD, _U2K_CONS,
                               own=_U2K_PROD)
        self._out = ffi.new("uint8_t[]", _RECV_BURST * slot_size)
        self._out_lengths = ffi.new("uint32_t[]", _RECV_BURST)
        self._oversize = ffi.new("uint64_t *")
        #: True if open() created the interface, False if it re-attached an existing one.
        self.created = True

    def _kring(self, base, desc: int, data: int, log2: int, prod: int, cons: int, own: int):
        r = ffi.new("struct snic_kring *")
        r.desc, r.data = base + desc, base + data
        r.prod, r.cons = ffi.cast("uint32_t *", base + prod), ffi.cast("uint32_t *", base + cons)
        r.log2, r.slot_size, r.desc_size = log2, self._slot, _DESC_SIZE
        r.index = _U32.unpack_from(self._area, own)[0]
        return r

    @classmethod
    def in_memory(cls, k2u_log2: int = DEFAULT_LOG2, u2k_log2: int = DEFAULT_LOG2, slot_size: int = 2048,
                  name: str = "mem0", mtu: int = 1500) -> "StubTunnel":
        """The stub's shared area in plain memory, with no module behind it (benchmarks, tests).

        Whoever plays the kernel produces k2u and consumes u2k on :attr:`area`
        (``spec.area_layout`` gives the offsets); nothing is kicked.
        """
        rings = spec.area_layout(k2u_log2, u2k_log2, slot_size)
        area = mmap.mmap(-1, rings["area_size"])
        tunnel = cls(-1, name, bytes.fromhex("020000000000"), mtu, 0, rings, k2u_log2, u2k_log2, slot_size, area)
        tunnel.rings = rings
        return tunnel

    @property
    def oversize_drops(self) -> int:
        """Value of frames send_burst refused to copy because they exceed the slot size."""
        return self._oversize[0]

    @property
    def area(self) -> "mmap.mmap":
        """Value of the shared area's mapping."""
        return self._area

    @property
    def slot_size(self) -> int:
        """Value of the bytes per ring slot."""
        return self._slot

    @classmethod
    def open(cls, name: str, mac: bytes | None, mtu: int, *, mode: str = "auto",
             k2u_log2: int = DEFAULT_LOG2, u2k_log2: int = DEFAULT_LOG2,
             slot_size: int | None = None) -> "StubTunnel":
        """Attach interface ``name`` (``mode``: ``attach``, ``create``, or ``auto`` = attach else create).

        The rings get ``2**k2u_log2`` / ``2**u2k_log2`` entries of
        ``slot_size`` bytes (default: the smallest power of two that holds
        MTU + FRAME_OVERHEAD: header and two VLAN tags).
        """
        if mode not in ("auto", "attach", "create"):
            raise ValueError(f"mode must be auto, attach or create, not {mode!r}")
        fd = _open_device()
        try:
            _check_info(stub_info(fd))
            out = None
            if mode != "create":
                req = _if_req(name, mac, mtu)
                try:
                    fcntl.ioctl(fd, spec.constant("IOC_ATTACH"), req, True)
                    request, out = "IOC_ATTACH", bytes(req)
                except OSError as err:
                    # auto: no splitnic interface of that name yet, so create it.
                    if mode == "attach" or err.errno != errno.ENODEV:
                        raise _ioctl_error("IOC_ATTACH", err, name) from None
            if out is None:
                request = "IOC_CREATE"
                out = _ioctl(fd, request, _if_req(name, mac, mtu), name)
            got = spec.IF_REQ.unpack(out)
            name = (got["name_lo"].to_bytes(8, "little") + got["name_hi"].to_bytes(8, "little")).rstrip(b"\0").decode()
            mac_out = got["mac"].to_bytes(6, "little")
            if slot_size is None:
                slot_size = spec.constant("SLOT_SIZE_MIN")
                while slot_size < got["mtu"] + spec.constant("FRAME_OVERHEAD"):
                    slot_size *= 2
            ring_req = bytearray(spec.RING_REQ.pack(k2u_log2=k2u_log2, u2k_log2=u2k_log2, slot_size=slot_size))
            rings = spec.RING_REQ.unpack(_ioctl(fd, "IOC_SETUP_RINGS", ring_req,
                                                f"({2 ** k2u_log2}/{2 ** u2k_log2} entries of {slot_size} bytes)"))
            tunnel = cls(fd, name, mac_out, got["mtu"], got["ifindex"], rings, k2u_log2, u2k_log2, slot_size)
            tunnel.created = request == "IOC_CREATE"
        except BaseException:
            os.close(fd)
            raise
        log.info("stub tunnel %s (%s): %s mtu %d, rings %d/%d x %d B", name,
                 "created" if tunnel.created else "attached", format_mac(mac_out), got["mtu"],
                 2 ** k2u_log2, 2 ** u2k_log2, slot_size)
        return tunnel

    def set_carrier(self, up: bool) -> None:
        _ioctl(self._fd, "IOC_SET_CARRIER", _U32.pack(int(up)), self.name)

    def kick(self) -> None:
        """Tell the module that u2k has new entries (send_burst does it)."""
        _ioctl(self._fd, "IOC_KICK", what=self.name)

    def destroy(self) -> None:
        """Remove the interface (instead of leaving it for a re-attach), then close."""
        if self._fd >= 0:
            _ioctl(self._fd, "IOC_DESTROY", what=self.name)
        self.close()

    def read_config(self) -> control.KernelConfig:
        """The interface as the kernel configured it now: MAC, MTU, flags, address lists.

        Call it when ``poll()`` on :meth:`fileno` reports ``POLLPRI`` (register
        ``select.POLLIN | select.POLLPRI``), then program the NIC from it;
        reading clears ``POLLPRI`` until the next change
        (:mod:`splitnic.tunnel_stub_control`).
        """
        return control.read_config(self._fd)

    def config_pending(self) -> bool:
        """True while the kernel's configuration changed since the last :meth:`read_config`."""
        return control.config_pending(self._fd)

    def publish_stats(self, counters: Mapping[str, int] | None, *, link_speed_mbps: int = 0,
                      duplex: str | None = None, fw_version: str = "", bus_info: str = "",
                      rx_usecs: int | None = None, shape: control.NicShape | None = None) -> None:
        """Show the NIC in ``ethtool``: ``Nic.stats()``, LINK's speed/duplex, firmware, bus, moderation,
        rings and queues.

        About once a second and on link changes; see
        :func:`splitnic.tunnel_stub_control.publish`.
        """
        control.publish(self._fd, counters, link_speed_mbps=link_speed_mbps, duplex=duplex,
                        fw_version=fw_version, bus_info=bus_info, rx_usecs=rx_usecs, shape=shape)

    def publish_rules(self, rules: Sequence[control.SteerRule], *, capacity: int, rx_queues: int,
                      done: int = 0) -> None:
        """Show the NIC's steering table in ``ethtool -n`` (:func:`splitnic.tunnel_stub_control.publish_rules`)."""
        control.publish_rules(self._fd, rules, capacity=capacity, rx_queues=rx_queues, done=done)

    def take_rule_request(self) -> control.RuleRequest | None:
        """What ``ethtool -N`` asked and the driver has not taken yet, oldest first; None: nothing."""
        return control.take_rule_request(self._fd)

    def recv_burst(self, max_frames: int = 64) -> list[bytes]:
        n = lib.snic_kring_recv(self.k2u, min(max_frames, _RECV_BURST), self._out, self._slot, self._out_lengths)
        if self.k2u.bad_index:
            raise SplitnicError(f"stub {self._name}: the k2u producer index is more than a ring ahead: module bug")
        out, lengths, slot = self._out, self._out_lengths, self._slot
        return [ffi.buffer(out + i * slot, lengths[i])[:] for i in range(n)]

    def send_burst(self, frames: Sequence[bytes | bytearray | memoryview]) -> int:
        if not frames:
            return 0
        lengths = [len(f) for f in frames]
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        before = self.u2k.index
        taken = lib.snic_kring_send(self.u2k, ffi.from_buffer(data), ffi.new("uint32_t[]", lengths), len(frames),
                                    self._oversize)
        if self.u2k.index != before and self._fd >= 0:
            _ioctl(self._fd, "IOC_KICK", what=self.name)
        return taken

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._area is not None:
            self.k2u = self.u2k = self._base = None
            try:
                self._area.close()
            except BufferError:  # a pump still holds it; it goes with the pump
                pass
            self._area = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

