"""A hostile driver process: bad ioctl arguments, bad mmaps, garbage ring indices (inside the guest).

Ref: spec/splitnic_spec/tunnel.py ("Every argument is checked"); hostdrv/kmod/splitnic.c.

Each case must get an error or a counted drop; the host checks the console
for oopses and warnings after the run.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import random
import socket
import struct
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from splitnic_spec import tunnel as spec

from splitnic.tunnel import parse_mac
from splitnic.tunnel_stub import StubTunnel
from splitnic_lab.veth_lab import unique, udp_frame

C = spec.constant
U32 = struct.Struct("<I")


@contextmanager
def handle() -> Iterator[int]:
    fd = os.open("/dev/splitnic", os.O_RDWR)
    try:
        yield fd
    finally:
        os.close(fd)


def if_req(name: bytes = b"", **kw: int) -> bytearray:
    raw = name.ljust(16, b"\0")
    return bytearray(spec.IF_REQ.pack(name_lo=int.from_bytes(raw[:8], "little"),
                                      name_hi=int.from_bytes(raw[8:16], "little"), **kw))


def ring_req(**kw: int) -> bytearray:
    return bytearray(spec.RING_REQ.pack(**{"k2u_log2": 4, "u2k_log2": 4, "slot_size": 2048, **kw}))


_libc = ctypes.CDLL(None, use_errno=True)
_libc.ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)


def errno_of(fd: int, request: str | int, arg: bytes | bytearray | int = 0) -> int:
    """The errno an ioctl fails with, or 0.  An int ``arg`` is passed as a raw pointer."""
    request = C(request) if isinstance(request, str) else request
    if isinstance(arg, int):
        if _libc.ioctl(fd, request, arg) < 0:
            return ctypes.get_errno()
        return 0
    try:
        fcntl.ioctl(fd, request, arg, True) if isinstance(arg, bytearray) else fcntl.ioctl(fd, request, arg)
    except OSError as err:
        return err.errno
    return 0


def stats(name: str) -> dict[str, int]:
    base = f"/sys/class/net/{name}/statistics/"
    return {k: int(open(base + k).read()) for k in
            ("rx_packets", "rx_errors", "rx_length_errors", "rx_dropped", "tx_packets", "tx_errors", "tx_dropped")}


def test_calls_out_of_order(module: None) -> None:
    with handle() as fd:
        assert errno_of(fd, "IOC_SETUP_RINGS", ring_req()) == errno.ENODEV
        assert errno_of(fd, "IOC_SET_CARRIER", U32.pack(1)) == errno.ENODEV
        assert errno_of(fd, "IOC_KICK") == errno.ENODEV
        assert errno_of(fd, "IOC_DESTROY") == errno.ENODEV
        with pytest.raises(OSError) as e:
            mmap.mmap(fd, 4096 * 16)
        assert e.value.errno == errno.ENXIO
        assert errno_of(fd, "IOC_CREATE", if_req(unique("sh").encode())) == 0
        assert errno_of(fd, "IOC_SET_CARRIER", U32.pack(1)) == errno.ENXIO
        assert errno_of(fd, "IOC_KICK") == errno.ENXIO
        assert errno_of(fd, "IOC_CREATE", if_req(unique("sh").encode())) == errno.EBUSY
        assert errno_of(fd, "IOC_SETUP_RINGS", ring_req()) == 0
        assert errno_of(fd, "IOC_SETUP_RINGS", ring_req()) == errno.EBUSY
        assert errno_of(fd, "IOC_SET_CARRIER", U32.pack(2)) == errno.EINVAL
        assert errno_of(fd, "IOC_SET_CARRIER", U32.pack(0xFFFFFFFF)) == errno.EINVAL
        assert errno_of(fd, "IOC_KICK") == 0
        assert errno_of(fd, "IOC_DESTROY") == 0
        # A handle whose interface is gone is spent.
        assert errno_of(fd, "IOC_CREATE", if_req(unique("sh").encode())) == errno.EBUSY


@pytest.mark.parametrize("case", [
    ("16 bytes, no NUL", dict(name=b"abcdefghijklmnop")),
    ("garbage after the NUL", dict(name=b"snic\0junk")),
    ("slash in the name", dict(name=b"a/b")),
    ("two %d", dict(name=b"a%d%d")),
    ("name '.'", dict(name=b".")),
    ("multicast MAC", dict(name=b"", mac=0x010000000001)),
    ("MAC wider than 48 bits", dict(name=b"", mac=0x1_0000_0000_0002)),
    ("broadcast MAC", dict(name=b"", mac=0xFFFFFFFFFFFF)),
    ("MTU below 68", dict(name=b"", mtu=67)),
    ("MTU above the maximum", dict(name=b"", mtu=spec.MTU_MAX + 1)),
    ("MTU 2**32-1", dict(name=b"", mtu=0xFFFFFFFF)),
    ("flags", dict(name=b"", flags=1)),
    ("reserved", dict(name=b"", reserved=0x80000000)),
    ("ifindex set on input", dict(name=b"", ifindex=7)),
], ids=lambda c: c[0])
def test_bad_interface_requests_are_einval(module: None, case: tuple) -> None:
    kw = dict(case[1])
    name = kw.pop("name")
    with handle() as fd:
        assert errno_of(fd, "IOC_CREATE", if_req(name, **kw)) == errno.EINVAL
        assert errno_of(fd, "IOC_ATTACH", if_req(name or b"x", **kw)) == errno.EINVAL
        # Nothing was created: the handle can still create a good interface.
        assert errno_of(fd, "IOC_CREATE", if_req(b"")) == 0
        assert errno_of(fd, "IOC_DESTROY") == 0


def test_attach_with_a_template_or_unknown_name(module: None) -> None:
    with handle() as fd:
        assert errno_of(fd, "IOC_ATTACH", if_req(b"snic%d")) == errno.EINVAL
        assert errno_of(fd, "IOC_ATTACH", if_req(b"lo")) == errno.ENODEV  # not a splitnic interface
        assert errno_of(fd, "IOC_ATTACH", if_req(b"nosuchif")) == errno.ENODEV


@pytest.mark.parametrize("case", [
    ("k2u_log2 3", dict(k2u_log2=3)), ("u2k_log2 13", dict(u2k_log2=13)),
    ("log2 2**31", dict(k2u_log2=1 << 31)),
    ("slot 1024", dict(slot_size=1024)), ("slot 3000", dict(slot_size=3000)),
    ("slot 32768", dict(slot_size=32768)), ("slot 0", dict(slot_size=0)),
    ("area over AREA_MAX", dict(k2u_log2=12, u2k_log2=12, slot_size=16384)),
    ("flags", dict(flags=4)), ("area_size set on input", dict(area_size=1 << 40)),
    ("offset set on input", dict(u2k_data=4096)),
], ids=lambda c: c[0])
def test_bad_ring_requests_are_einval(module: None, case: tuple) -> None:
    with handle() as fd:
        assert errno_of(fd, "IOC_CREATE", if_req(b"")) == 0
        assert errno_of(fd, "IOC_SETUP_RINGS", ring_req(**case[1])) == errno.EINVAL
        assert errno_of(fd, "IOC_SETUP_RINGS", ring_req()) == 0  # nothing half-done
        errno_of(fd, "IOC_DESTROY")


def test_slots_must_hold_the_mtu(module: None) -> None:
    with handle() as fd:
        assert errno_of(fd, "IOC_CREATE", if_req(b"", mtu=9000)) == 0
        assert errno_of(fd, "IOC_SETUP_RINGS", ring_req(slot_size=8192)) == errno.EINVAL
        out = ring_req(slot_size=16384)
        assert errno_of(fd, "IOC_SETUP_RINGS", out) == 0
        got = spec.RING_REQ.unpack(out)
        assert {k: got[k] for k in ("area_size", "k2u_desc", "u2k_desc", "k2u_data", "u2k_data")} == \
            spec.area_layout(4, 4, 16384)
        errno_of(fd, "IOC_DESTROY")


def test_bad_pointers_and_unknown_requests(module: None) -> None:
    with handle() as fd:
        for request in ("IOC_INFO", "IOC_CREATE", "IOC_ATTACH", "IOC_SET_CARRIER"):
            assert errno_of(fd, request, 0) == errno.EFAULT, request        # NULL
            assert errno_of(fd, request, 0x10) == errno.EFAULT, request     # unmapped
        assert errno_of(fd, C("IOC_MAGIC") << 8 | 0x3F) == errno.ENOTTY
        assert errno_of(fd, 0x5401) == errno.ENOTTY  # TCGETS
        assert errno_of(fd, "IOC_CREATE", if_req(b"")) == 0
        for addr in (0, 0xFFFF_FFFF_FFFF_F000):
            assert errno_of(fd, "IOC_SETUP_RINGS", addr) == errno.EFAULT
        errno_of(fd, "IOC_DESTROY")


def test_bad_mmaps_are_refused(module: None) -> None:
    with handle() as fd:
        assert errno_of(fd, "IOC_CREATE", if_req(b"")) == 0
        out = ring_req()
        assert errno_of(fd, "IOC_SETUP_RINGS", out) == 0
        size = spec.RING_REQ.unpack(out)["area_size"]
        for length, offset, flags in ((size - 4096, 0, mmap.MAP_SHARED), (size + 4096, 0, mmap.MAP_SHARED),
                                      (size, 4096, mmap.MAP_SHARED), (size, 0, mmap.MAP_PRIVATE)):
            with pytest.raises(OSError) as e:
                mmap.mmap(fd, length, flags, offset=offset)
            assert e.value.errno == errno.EINVAL, (length, offset, flags)
        area = mmap.mmap(fd, size, mmap.MAP_SHARED)
        area[:4] = b"\xff\xff\xff\xff"  # writable
        area.close()
        errno_of(fd, "IOC_DESTROY")


def test_garbage_ring_indices_and_entries_are_counted_not_trusted(module: None) -> None:
    peer = parse_mac("02:00:5e:00:53:02")
    tun = StubTunnel.open(unique("sg"), None, 1500, mode="create", k2u_log2=4, u2k_log2=4)
    try:
        tun.set_admin_up()
        tun.set_carrier(True)
        subprocess.run(["ip", "addr", "add", "198.18.5.1/24", "dev", tun.name], check=True)
        subprocess.run(["ip", "neigh", "replace", "198.18.5.9", "lladdr", "02:00:5e:00:53:02", "dev", tun.name],
                       check=True)
        area, slot = tun._area, tun._slot
        layout = spec.area_layout(4, 4, slot)
        before = stats(tun.name)

        # u2k producer far beyond the ring: nothing delivered, one error per kick.
        prod = U32.unpack_from(area, C("CTRL_U2K_PROD"))[0]
        U32.pack_into(area, C("CTRL_U2K_PROD"), 0x8000_0000)
        fcntl.ioctl(tun.fileno(), C("IOC_KICK"))
        time.sleep(0.2)
        after = stats(tun.name)
        assert after["rx_errors"] > before["rx_errors"] and after["rx_packets"] == before["rx_packets"]
        U32.pack_into(area, C("CTRL_U2K_PROD"), prod)

        # Entries with bad lengths or flags are dropped and counted as length errors.
        cons = U32.unpack_from(area, C("CTRL_U2K_CONS"))[0]
        bad = [(0, 0), (13, 0), (slot + 1, 0), (0xFFFFFFFF, 0), (1600, 0), (60, 1), (60, 0x80000000)]
        for i, (length, flags) in enumerate(bad):
            struct.pack_into(spec.DESC.format, area, layout["u2k_desc"] + ((cons + i) & 15) * 8, length, flags)
        U32.pack_into(area, C("CTRL_U2K_PROD"), (cons + len(bad)) & 0xFFFFFFFF)
        fcntl.ioctl(tun.fileno(), C("IOC_KICK"))
        time.sleep(0.2)
        after2 = stats(tun.name)
        assert after2["rx_length_errors"] - after["rx_length_errors"] == len(bad)
        assert after2["rx_packets"] == before["rx_packets"]

        # k2u consumer index garbage: the kernel's frames are dropped and counted, not written anywhere.
        U32.pack_into(area, C("CTRL_K2U_CONS"), 0x4000_0000)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(5):
                s.sendto(b"x", ("198.18.5.9", 9))
        time.sleep(0.2)
        after3 = stats(tun.name)
        assert after3["tx_errors"] > after2["tx_errors"]

        # Random scribbles over the whole control page and descriptors, with kicks and polls.
        rng = random.Random(1234)
        for _ in range(300):
            off = rng.randrange(0, layout["u2k_data"], 4)
            U32.pack_into(area, off, rng.getrandbits(32))
            if rng.random() < 0.3:
                fcntl.ioctl(tun.fileno(), C("IOC_KICK"))
            if rng.random() < 0.1:
                tun.wait(0)

        # A new driver process (here: a new handle) gets fresh rings: the interface works again.
        tun.close()
        tun = StubTunnel.open(tun.name, None, 0, mode="attach")
        tun.set_carrier(True)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("198.18.5.1", 0))
            s.settimeout(5)
            frame = udp_frame(tun.mac, peer, "198.18.5.9", "198.18.5.1", 1, s.getsockname()[1], b"alive")
            assert tun.send_burst([frame]) == 1
            assert s.recv(100) == b"alive"
    finally:
        tun.destroy()


def test_random_ioctls_never_crash(module: None) -> None:
    rng = random.Random(99)
    with handle() as fd:
        for _ in range(2000):
            nr = rng.randrange(0, 16)
            size = rng.choice([0, 4, 8, 16, 40, 41, 64, rng.randrange(0, 1 << 14)])
            direction = rng.randrange(4)
            request = direction << 30 | size << 16 | C("IOC_MAGIC") << 8 | nr
            buf = bytearray(rng.getrandbits(8) for _ in range(max(size, 64)))
            errno_of(fd, request, buf if rng.random() < 0.8 else rng.getrandbits(48))
        # The handle may or may not have an interface now; either way it is released cleanly.
        errno_of(fd, "IOC_DESTROY")


def test_closing_with_the_area_still_mapped(module: None) -> None:
    with handle() as fd:
        assert errno_of(fd, "IOC_CREATE", if_req(b"")) == 0
        out = ring_req()
        assert errno_of(fd, "IOC_SETUP_RINGS", out) == 0
        area = mmap.mmap(fd, spec.RING_REQ.unpack(out)["area_size"], mmap.MAP_SHARED)
    # The mapping keeps the file (and the area) alive after close(): still usable.
    area[4096:4100] = b"abcd"
    assert area[4096:4100] == b"abcd"
    area.close()


def _address(area: mmap.mmap) -> int:
    view = ctypes.c_char.from_buffer(area)
    addr = ctypes.addressof(view)
    del view  # the mapping can be closed again
    return addr


def test_mmap_refuses_exec_now_and_later(module: None) -> None:
    with handle() as fd:
        assert errno_of(fd, "IOC_CREATE", if_req(b"")) == 0
        out = ring_req()
        assert errno_of(fd, "IOC_SETUP_RINGS", out) == 0
        size = spec.RING_REQ.unpack(out)["area_size"]
        with pytest.raises(OSError) as e:
            mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        assert e.value.errno == errno.EPERM
        area = mmap.mmap(fd, size, mmap.MAP_SHARED)
        addr = _address(area)
        _libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        assert _libc.mprotect(addr, 4096, mmap.PROT_READ | mmap.PROT_EXEC) != 0
        assert ctypes.get_errno() == errno.EACCES
        area.close()
        errno_of(fd, "IOC_DESTROY")


def _unwritable_copy(req: bytearray) -> tuple[mmap.mmap, int]:
    """``req`` in a read-only page: the module can read it, its answer faults (EFAULT)."""
    page = mmap.mmap(-1, 4096)
    page[:len(req)] = req
    addr = _address(page)
    _libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    assert _libc.mprotect(addr, 4096, mmap.PROT_READ) == 0
    return page, addr


def _links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def test_efault_after_create_leaves_no_interface(module: None) -> None:
    name = unique("se")
    before = _links()
    page, addr = _unwritable_copy(if_req(name.encode()))
    with handle() as fd:
        assert errno_of(fd, "IOC_CREATE", addr) == errno.EFAULT
        assert _links() == before, "an interface the caller never learned of was left"
        # The handle is not spent: it can still create (and the name is free).
        assert errno_of(fd, "IOC_CREATE", if_req(name.encode())) == 0
        assert errno_of(fd, "IOC_DESTROY") == 0
    page.close()


def test_failed_attach_changes_nothing(module: None) -> None:
    name = unique("sf")
    tun = StubTunnel.open(name, parse_mac("02:00:5e:00:53:21"), 1500, mode="create")
    tun.close()
    try:
        page, addr = _unwritable_copy(if_req(name.encode(), mtu=1280, mac=0x2253005E0002))
        with handle() as fd:
            assert errno_of(fd, "IOC_ATTACH", addr) == errno.EFAULT
        page.close()
        info = subprocess.run(["ip", "-j", "link", "show", name], capture_output=True, text=True).stdout
        assert '"mtu":1500' in info and "02:00:5e:00:53:21" in info
        again = StubTunnel.open(name, None, 0, mode="attach")  # not left attached to the failed handle
        assert again.mtu == 1500
        again.destroy()
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)


def test_create_and_attach_need_cap_net_admin(module: None) -> None:
    code = ("import fcntl, os, sys; from tests.vm.guest_tests.test_stub_hostile import if_req, C\n"
            "fd = os.open('/dev/splitnic', os.O_RDWR)\n"
            "for req in ('IOC_CREATE', 'IOC_ATTACH'):\n"
            "    try:\n"
            "        fcntl.ioctl(fd, C(req), if_req(b'lo'), True)\n"
            "    except OSError as e:\n"
            "        print(req, e.errno)\n")
    result = subprocess.run(["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin", sys.executable,
                             "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH="."))
    assert result.stdout.split() == ["IOC_CREATE", str(errno.EPERM), "IOC_ATTACH", str(errno.EPERM)], \
        result.stdout + result.stderr
