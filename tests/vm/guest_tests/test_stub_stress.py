"""snic0 under stress: down/up with frames pending, honest counters, driver deaths and odd paths (inside the guest).

Ref: issue 28; hostdrv/kmod/splitnic.c; spec/splitnic_spec/tunnel.py.

Each test here failed on the module before the fix it names (the report in
hostdrv/kmod/README.md, "Tests", says which could not be made to fail).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Iterator

import pytest

from splitnic_spec import tunnel as spec

from splitnic.tunnel import parse_mac
from splitnic.tunnel_stub import StubTunnel
from splitnic.tunnel_stub_control import NicShape, SteerRule
from splitnic_lab.veth_lab import KERNEL_IP, Lab, carrier, inside, sh, udp_frame, unique

from .test_stub_hostile import _unwritable_copy, errno_of, handle, if_req, ring_req

C = spec.constant
PEER_MAC = parse_mac("02:00:5e:00:53:02")
PEER_IP = "198.18.0.9"


@pytest.fixture
def ns(module: None) -> Iterator[str]:
    name = unique("sst")
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")
    try:
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


def _open(ns: str, **kw) -> StubTunnel:
    """A stub interface in ``ns``: created, up, carrier on, KERNEL_IP, no IPv6 (the kernel sends nothing)."""
    with inside(ns):
        t = StubTunnel.open(unique("sx"), kw.pop("mac", None), kw.pop("mtu", 1500), mode="create", **kw)
        t.set_admin_up()
    t.set_carrier(True)
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{t.name}.disable_ipv6=1")
    sh("ip", "-n", ns, "addr", "add", f"{KERNEL_IP}/24", "dev", t.name)
    sh("ip", "-n", ns, "neigh", "replace", PEER_IP, "lladdr", "02:00:5e:00:53:02", "dev", t.name)
    return t


def _udp(ns: str, bind: bool = True) -> socket.socket:
    with inside(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if bind:
        s.bind((KERNEL_IP, 0))
    s.settimeout(5)
    return s


def _frame(t: StubTunnel, s: socket.socket, payload: bytes) -> bytes:
    return udp_frame(t.mac, PEER_MAC, PEER_IP, KERNEL_IP, 999, s.getsockname()[1], payload)


def _stats(ns: str, name: str) -> dict:
    return json.loads(sh("ip", "-s", "-s", "-j", "link", "show", name, netns=ns).stdout)[0]["stats64"]


def _ip(ns: str, name: str, *args: str) -> None:
    sh("ip", "-n", ns, "link", "set", name, *args)


def _received(s: socket.socket, quiet: float = 0.3) -> list[bytes]:
    """Every datagram waiting on ``s`` and arriving until ``quiet`` seconds pass without one."""
    got = []
    s.settimeout(quiet)
    try:
        while True:
            got.append(s.recv(65536))
    except socket.timeout:
        pass
    return got


# --------------------------------------------------------------------------- down / up with frames pending


def test_frames_queued_while_down_are_dropped_and_counted_not_delivered_after_up(ns: str) -> None:
    t = _open(ns)
    try:
        with _udp(ns) as s:
            _ip(ns, t.name, "down")
            stale = [_frame(t, s, b"stale-%d" % i) for i in range(10)]
            assert t.send_burst(stale) == 10
            dropped = _stats(ns, t.name)["rx"]["dropped"]
            _ip(ns, t.name, "up")
            assert t.send_burst([_frame(t, s, b"fresh")]) == 1
            assert _received(s) == [b"fresh"], "frames queued while the interface was down came in after up"
        assert dropped >= 10, "the frames dropped while down are not counted"
    finally:
        t.destroy()


def test_a_full_u2k_ring_while_down_does_not_stall_receive_after_up(ns: str) -> None:
    t = _open(ns)  # 256 u2k entries
    try:
        with _udp(ns) as s:
            _ip(ns, t.name, "down")
            frames = [_frame(t, s, b"while-down-%d" % i) for i in range(64)]
            taken = 0
            for _ in range(3000 // 64):     # the 3 000 frames from the wire while down
                taken += t.send_burst(frames)
            _ip(ns, t.name, "up")
            poller = select.poll()
            poller.register(t.fileno(), select.POLLOUT)
            assert poller.poll(3000), f"u2k never had room again after up ({taken} frames taken while down)"
            fresh = _frame(t, s, b"fresh")
            deadline = time.monotonic() + 5
            while not t.send_burst([fresh]):
                assert time.monotonic() < deadline, "u2k stayed full after up"
                time.sleep(0.05)
            assert _received(s, 1.0) == [b"fresh"]
        assert taken == 3000 // 64 * 64, "while down the module drops what the driver delivers: the ring never fills"
    finally:
        t.destroy()


# --------------------------------------------------------------------------- counters


def test_ip_s_link_counts_the_interfaces_own_frames_and_never_goes_backwards(ns: str) -> None:
    t = _open(ns)
    try:
        with _udp(ns) as s:
            assert t.send_burst([_frame(t, s, b"in-%d" % i) for i in range(7)]) == 7
            assert len(_received(s)) == 7
            for i in range(5):
                s.sendto(b"out-%d" % i, (PEER_IP, 4242))
        time.sleep(0.2)
        own = _stats(ns, t.name)
        assert own["rx"]["packets"] == 7 and own["tx"]["packets"] >= 5
        # The NIC's totals (its fast-path queues included) go to ethtool -S, not ip -s link.
        big = {name: 10_000_000 + i for i, name in enumerate(spec.NIC_COUNTERS)}
        t.publish_stats(big)
        shown = _stats(ns, t.name)
        assert shown["rx"]["packets"] == own["rx"]["packets"] and shown["rx"]["bytes"] == own["rx"]["bytes"]
        assert shown["tx"]["packets"] == own["tx"]["packets"] and shown["tx"]["bytes"] == own["tx"]["bytes"]
        ethtool = sh("ethtool", "-S", t.name, netns=ns).stdout
        assert f"rx_ok: {big['rx_ok']}" in ethtool and "tunnel_rx_packets: 7" in ethtool
        # A new driver against a reset NIC publishes smaller figures: nothing goes backwards.
        t.publish_stats({name: 0 for name in spec.NIC_COUNTERS})
        again = _stats(ns, t.name)
        for d in ("rx", "tx"):
            for k in ("packets", "bytes", "errors", "dropped"):
                assert again[d][k] >= shown[d][k], (d, k, again, shown)
        # The driver dies and a new one attaches: the figures carry on from where they were.
        t.close()
        assert _stats(ns, t.name)["rx"]["packets"] == again["rx"]["packets"]
        with inside(ns):
            t = StubTunnel.open(t.name, None, 0, mode="attach")
        t.set_carrier(True)
        with _udp(ns) as s:
            assert t.send_burst([_frame(t, s, b"again-%d" % i) for i in range(4)]) == 4
            assert len(_received(s)) == 4
        assert _stats(ns, t.name)["rx"]["packets"] == again["rx"]["packets"] + 4
    finally:
        t.destroy()


# --------------------------------------------------------------------------- splitnic up and ip link del


def test_splitnic_up_exits_with_one_line_after_ip_link_del(module: None) -> None:
    with Lab(wire_in_k=True) as lab:
        # A quiet wire (no IPv6 chatter): nothing but the hang-up can tell the driver.
        for netns in (lab.k, lab.p):
            for conf in ("all", "default"):
                sh("ip", "netns", "exec", netns, "sysctl", "-qw", f"net.ipv6.conf.{conf}.disable_ipv6=1")
        name = unique("sd")
        up = lab.start_up("stub", name)
        sh("ip", "-n", lab.k, "link", "del", name)
        try:
            out, _ = up.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            cpu = _cpu_seconds(up.proc.pid)
            up.proc.kill()
            pytest.fail(f"splitnic up still runs 30 s after ip link del ({cpu:.1f} s of CPU)")
        lines = [line for line in out.splitlines() if line.strip()]
        assert up.proc.returncode not in (0, None), out
        assert len(lines) == 1 and name in lines[0] and "deleted" in lines[0], out


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- transmit


def test_a_stopped_transmit_queue_restarts_without_poll_or_kick(ns: str) -> None:
    t = _open(ns, k2u_log2=4)  # 16 entries
    try:
        # A plain FIFO: fq_codel would drop (rightly) what waits more than 100 ms for the ring.
        sh("tc", "qdisc", "replace", "dev", t.name, "root", "pfifo", "limit", "1000", netns=ns)
        time.sleep(0.2)
        t.recv_burst(64)
        with _udp(ns, bind=False) as s:
            s.setblocking(False)
            sent = 0
            for i in range(300):
                try:
                    s.sendto(b"x%d" % i, (PEER_IP, 4242))
                    sent += 1
                except BlockingIOError:
                    break
        total = 0
        deadline = time.monotonic() + 10
        while total < sent and time.monotonic() < deadline:
            total += len(t.recv_burst(64))    # a consumer that never polls or kicks
            time.sleep(0.01)
        assert total == sent, f"{total} of {sent} frames came through a 16-entry ring without poll()"
    finally:
        t.destroy()


def test_software_tx_timestamps(ns: str) -> None:
    t = _open(ns)
    so_timestamping, tx_software, software, opt_tsonly = 37, 1 << 1, 1 << 4, 1 << 11
    try:
        info = sh("ethtool", "-T", t.name, netns=ns).stdout
        assert "software-transmit" in info, info
        with _udp(ns, bind=False) as s:
            s.setsockopt(socket.SOL_SOCKET, so_timestamping, tx_software | software | opt_tsonly)
            s.sendto(b"stamp-me", (PEER_IP, 4242))
            deadline = time.monotonic() + 3
            while True:
                try:
                    _, anc, _, _ = s.recvmsg(64, 1024, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
                    break
                except BlockingIOError:
                    assert time.monotonic() < deadline, "no software transmit timestamp"
                    time.sleep(0.05)
        stamps = [data for level, kind, data in anc if level == socket.SOL_SOCKET and kind == so_timestamping]
        assert stamps and struct.unpack_from("qq", stamps[0]) != (0, 0)
    finally:
        t.destroy()


def test_netconsole_through_the_interface(module: None) -> None:
    """netpoll transmits with interrupts off (netconsole): its messages reach k2u."""
    t = StubTunnel.open(unique("sk"), None, 1500, mode="create")
    try:
        t.set_admin_up()
        t.set_carrier(True)
        sh("ip", "addr", "add", "198.18.9.1/24", "dev", t.name)
        target = f"6665@198.18.9.1/{t.name},6666@198.18.9.2/02:00:5e:00:53:02"
        sh("modprobe", "netconsole", f"netconsole={target}")
        devkmsg = open("/proc/sys/kernel/printk_devkmsg").read().strip()
        sh("sysctl", "-qw", "kernel.printk_devkmsg=on")   # no rate limit on /dev/kmsg writes
        try:
            t.recv_burst(256)
            with open("/dev/kmsg", "w") as kmsg:
                for i in range(20):
                    kmsg.write(f"<4>splitnic-netconsole-{i}\n")
                    kmsg.flush()
            seen = b""
            deadline = time.monotonic() + 5
            while b"splitnic-netconsole-19" not in seen and time.monotonic() < deadline:
                t.wait(0.1)
                seen += b"".join(t.recv_burst(256))
            assert all(b"splitnic-netconsole-%d" % i in seen for i in range(20)), seen[-500:]
        finally:
            sh("sysctl", "-qw", f"kernel.printk_devkmsg={devkmsg}")
            sh("rmmod", "netconsole", check=False)
    finally:
        t.destroy()


# --------------------------------------------------------------------------- configuration events


def test_every_configuration_change_wakes_poll_pri_under_stress(ns: str) -> None:
    """One change at a time, each while the driver sleeps in poll(): not one wake-up may be lost."""
    t = _open(ns)
    rounds = 400
    ifreq = struct.Struct("16si12x")
    go, done = threading.Semaphore(0), threading.Event()

    def change() -> None:
        with inside(ns):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s:
            for i in range(rounds):
                go.acquire()
                if done.is_set():
                    return
                fcntl.ioctl(s, 0x8922, ifreq.pack(t.name.encode(), 1400 + i % 2))  # SIOCSIFMTU

    changer = threading.Thread(target=change)
    changer.start()
    lost = 0
    try:
        poller = select.poll()
        poller.register(t.fileno(), select.POLLPRI)
        for _ in range(rounds):
            t.read_config()
            go.release()
            if not poller.poll(2000):
                lost += 1
        assert lost == 0, f"{lost} of {rounds} configuration changes woke no poll()"
    finally:
        done.set()
        go.release()
        changer.join()
        t.destroy()


# --------------------------------------------------------------------------- the handle and its area


_FORKER = """
import os, sys, time
from splitnic.tunnel_stub import StubTunnel
t = StubTunnel.open(sys.argv[1], None, 1500, mode="create")
t.set_admin_up()
t.set_carrier(True)
child = os.fork()
if child == 0:
    time.sleep(120)
    os._exit(0)
print(child, flush=True)
time.sleep(120)
"""


def test_fork_then_sigkill_of_the_driver_drops_the_carrier(module: None) -> None:
    name = unique("sf")
    parent = subprocess.Popen([sys.executable, "-c", _FORKER, name], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    child = int(parent.stdout.readline())
    try:
        assert carrier("", name)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 3
        while carrier("", name) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not carrier("", name), "the driver died, its forked child (no mapping) keeps the carrier up"
    finally:
        os.kill(child, signal.SIGKILL)
        time.sleep(0.2)
        sh("ip", "link", "del", name, check=False)


def test_setup_rings_that_fails_with_efault_can_be_retried(module: None) -> None:
    with handle() as fd:
        assert errno_of(fd, "IOC_CREATE", if_req(b"")) == 0
        page, addr = _unwritable_copy(ring_req())
        assert errno_of(fd, "IOC_SETUP_RINGS", addr) == errno.EFAULT
        page.close()
        assert errno_of(fd, "IOC_SETUP_RINGS", ring_req()) == 0, "a failed SETUP_RINGS was left half done"
        assert errno_of(fd, "IOC_DESTROY") == 0


def _cgroup_root() -> str:
    root = "/sys/fs/cgroup"
    if not os.path.exists(f"{root}/cgroup.controllers"):
        sh("mount", "-t", "cgroup2", "none", root)
    if "memory" not in open(f"{root}/cgroup.subtree_control").read():
        with open(f"{root}/cgroup.subtree_control", "w") as f:
            f.write("+memory")
    return root


_CHARGED = """
import os, sys
from splitnic.tunnel_stub import StubTunnel
with open(sys.argv[1] + "/cgroup.procs", "w") as f:
    f.write(str(os.getpid()))
current = lambda: int(open(sys.argv[1] + "/memory.current").read())
t = StubTunnel.open(sys.argv[2], None, 1500, mode="create", k2u_log2=12, u2k_log2=12, slot_size=2048)
before = current()
t.close()
print(before - current())
"""


def test_the_shared_area_is_charged_to_the_drivers_memory_cgroup(module: None) -> None:
    group = f"{_cgroup_root()}/{unique('snm')}"
    os.mkdir(group)
    name = unique("sm")
    area = spec.area_layout(12, 12, 2048)["area_size"]   # 16 MiB and a bit
    try:
        out = subprocess.run([sys.executable, "-c", _CHARGED, group, name], capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)), timeout=120)
        assert out.returncode == 0, out.stderr
        freed = int(out.stdout.split()[0])
        assert freed >= area * 0.9, f"closing the handle gave back {freed} bytes of the {area} byte area"
    finally:
        sh("ip", "link", "del", name, check=False)
        os.rmdir(group)


# --------------------------------------------------------------------------- frame sizes


def test_qinq_frames_at_the_largest_mtu_are_received(ns: str) -> None:
    mtu = spec.MTU_MAX
    t = _open(ns, mtu=mtu)
    outer, inner = unique("qo"), unique("qi")
    try:
        sh("modprobe", "8021q")
        sh("ip", "-n", ns, "addr", "flush", "dev", t.name)
        sh("ip", "-n", ns, "link", "add", "link", t.name, "name", outer, "type", "vlan", "proto", "802.1ad",
           "id", "100")
        sh("ip", "-n", ns, "link", "add", "link", outer, "name", inner, "type", "vlan", "id", "200")
        for dev in (outer, inner):
            _ip(ns, dev, "mtu", str(mtu), "up")
        sh("ip", "-n", ns, "addr", "add", f"{KERNEL_IP}/24", "dev", inner)
        before = _stats(ns, t.name)["rx"]
        with _udp(ns) as s:
            payload = bytes(i & 0xFF for i in range(mtu - 28))
            plain = _frame(t, s, payload)
            tags = b"\x88\xa8\x00\x64" + b"\x81\x00\x00\xc8"
            frame = plain[:12] + tags + plain[12:]
            assert len(frame) == mtu + 14 + 8
            assert t.send_burst([frame]) == 1
            assert s.recv(65536) == payload
        after = _stats(ns, t.name)["rx"]
        assert after["errors"] == before["errors"] and after["packets"] == before["packets"] + 1
    finally:
        t.destroy()


# --------------------------------------------------------------------------- teardown and changes during traffic


class _Traffic:
    """Frames both ways through ``t`` from two threads until the interface goes away or stop()."""

    def __init__(self, ns: str, t: StubTunnel) -> None:
        self.t, self.ns, self.errors = t, ns, []
        self.moved = 0
        self._stop, self._driver_stop, self._sockets_stop = threading.Event(), threading.Event(), threading.Event()
        with inside(ns):
            self._rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._rx.bind((KERNEL_IP, 0))
        self._tx.setblocking(False)
        self._frames = [_frame(t, self._rx, b"%04d" % i + bytes(i * 7 % 1400)) for i in range(32)]
        self._threads = [threading.Thread(target=self._driver), threading.Thread(target=self._sender)]
        for th in self._threads:
            th.start()

    def _driver(self) -> None:
        try:
            while not self._stop.is_set() and not self._driver_stop.is_set():
                taken = self.t.send_burst(self._frames)
                if not taken:
                    self.t.kick()   # u2k full: nobody consumes any more?
                self.moved += taken + len(self.t.recv_burst(64))
        except Exception as err:    # the interface went away under the driver: an error, not a crash
            self.errors.append(err)

    def stop_driver(self) -> None:
        """Stop the driver thread only (the kernel's own frames keep coming)."""
        self._driver_stop.set()
        self._threads[0].join(10)

    def close_sockets(self) -> None:
        """Stop the kernel's side (its sockets would keep their namespace alive)."""
        self._sockets_stop.set()
        self._threads[1].join(10)
        self._rx.close()
        self._tx.close()

    def _sender(self) -> None:
        while not self._stop.is_set() and not self._sockets_stop.is_set():
            try:
                self._tx.sendto(b"out", (PEER_IP, 4242))
            except OSError:
                time.sleep(0.001)

    def stop(self) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(10)
        self._rx.close()
        self._tx.close()   # (closing twice is harmless)


def test_ip_link_del_namespace_deletion_and_rmmod_during_traffic(module: None) -> None:
    from .conftest import load_module
    for how in ("ip link del", "netns del", "rmmod"):
        netns = unique("sst")
        sh("ip", "netns", "add", netns)
        try:
            t = _open(netns)
            traffic = _Traffic(netns, t)
            time.sleep(0.5)
            assert traffic.moved > 0, how
            if how == "ip link del":
                sh("ip", "-n", netns, "link", "del", t.name)
            elif how == "netns del":
                traffic.close_sockets()     # the driver's frames go on (and ICMP errors come back)
                sh("ip", "netns", "del", netns)
            else:
                busy = subprocess.run(["rmmod", "splitnic"], capture_output=True, text=True)
                assert busy.returncode != 0 and "in use" in busy.stderr, busy.stderr
                traffic.stop_driver()
                t.close()   # the driver is gone; the kernel's own frames keep coming
                time.sleep(0.3)
            deadline = time.monotonic() + 5
            while how != "rmmod" and not traffic.errors and time.monotonic() < deadline:
                time.sleep(0.05)
            if how == "rmmod":
                gone = subprocess.run(["rmmod", "splitnic"], capture_output=True, text=True)
                traffic.stop()
                assert gone.returncode == 0, gone.stderr
                load_module()
            else:
                traffic.stop()
                assert traffic.errors, f"{how}: the driver never noticed"
                assert "was deleted" in str(traffic.errors[0]), traffic.errors[0]
                t.close()
        finally:
            sh("ip", "netns", "del", netns, check=False)


def test_mtu_changes_during_traffic(ns: str) -> None:
    t = _open(ns, slot_size=C("SLOT_SIZE_MAX"))
    traffic = _Traffic(ns, t)
    try:
        for mtu in (9000, 68, 1500, 576, 9000, 1280, 1500):
            _ip(ns, t.name, "mtu", str(mtu))
            time.sleep(0.02)
    finally:
        traffic.stop()
    assert not traffic.errors, traffic.errors
    with _udp(ns) as s:
        _received(s, 0.1)
        assert t.send_burst([_frame(t, s, b"after")]) == 1
        assert s.recv(100) == b"after"
    t.destroy()


def test_frames_at_the_slot_and_mtu_boundaries(ns: str) -> None:
    slot = C("SLOT_SIZE_MIN")
    t = _open(ns, slot_size=slot)
    try:
        layout = spec.area_layout(8, 8, slot)
        with _udp(ns) as s:
            base = _frame(t, s, b"")

            def deliver(length: int) -> None:
                # The frame in its slot, its length in the entry, the index published, a kick.
                prod = struct.unpack_from("<I", t.area, C("CTRL_U2K_PROD"))[0]
                frame = (base + bytes(max(0, length - len(base))))[:min(length, slot)]
                at = layout["u2k_data"] + (prod & 255) * slot
                t.area[at:at + len(frame)] = frame
                struct.pack_into("<II", t.area, layout["u2k_desc"] + (prod & 255) * 8, length, 0)
                struct.pack_into("<I", t.area, C("CTRL_U2K_PROD"), (prod + 1) & 0xFFFFFFFF)
                t.u2k.index = (prod + 1) & 0xFFFFFFFF
                t.kick()
                time.sleep(0.1)

            _ip(ns, t.name, "mtu", str(slot - C("FRAME_OVERHEAD")))   # the largest MTU the slots hold
            for length, taken in ((slot, True), (slot + 1, False), (C("FRAME_MIN"), True),
                                  (C("FRAME_MIN") - 1, False)):
                before = _stats(ns, t.name)["rx"]
                deliver(length)
                after = _stats(ns, t.name)["rx"]
                assert after["packets"] - before["packets"] == int(taken), (length, before, after)
                assert after["length_errors"] - before["length_errors"] == int(not taken), (length, before, after)
            _ip(ns, t.name, "mtu", "1500")                            # now the MTU is the limit
            for length, taken in ((1500 + C("FRAME_OVERHEAD"), True), (1500 + C("FRAME_OVERHEAD") + 1, False)):
                before = _stats(ns, t.name)["rx"]
                deliver(length)
                after = _stats(ns, t.name)["rx"]
                assert after["packets"] - before["packets"] == int(taken), (length, before, after)
        # The kernel's largest frame fills a slot exactly: two VLAN tags on the largest MTU.
        sh("modprobe", "8021q")
        _ip(ns, t.name, "mtu", str(slot - C("FRAME_OVERHEAD")))
        outer, inner = unique("qo"), unique("qi")
        sh("ip", "-n", ns, "link", "add", "link", t.name, "name", outer, "type", "vlan", "proto", "802.1ad",
           "id", "7")
        sh("ip", "-n", ns, "link", "add", "link", outer, "name", inner, "type", "vlan", "id", "8")
        for dev in (outer, inner):
            _ip(ns, dev, "up")
        sh("ip", "-n", ns, "addr", "add", "198.18.8.1/24", "dev", inner)
        sh("ip", "-n", ns, "neigh", "replace", "198.18.8.2", "lladdr", "02:00:5e:00:53:02", "dev", inner)
        t.recv_burst(256)
        with inside(ns):
            out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with out:
            out.sendto(bytes(slot - C("FRAME_OVERHEAD") - 28), ("198.18.8.2", 9))
        deadline = time.monotonic() + 3
        got = []
        while not any(len(f) == slot for f in got) and time.monotonic() < deadline:
            t.wait(0.1)
            got += t.recv_burst(64)
        assert slot in [len(f) for f in got], [len(f) for f in got]
    finally:
        t.destroy()


# --------------------------------------------------------------------------- ethtool


def test_ethtool_g_and_l_show_the_nics_rings_and_queues_once_the_driver_published_them(ns: str) -> None:
    t = _open(ns, k2u_log2=5, u2k_log2=7)
    try:
        # Before the driver says what the NIC has: the tunnel's rings, one queue pair.
        rings = sh("ethtool", "-g", t.name, netns=ns).stdout
        maxima, current = rings.split("Current hardware settings:")
        assert "RX:\t\t4096" in maxima and "TX:\t\t4096" in maxima, rings
        assert "RX:\t\t128" in current and "TX:\t\t32" in current, rings
        channels = sh("ethtool", "-l", t.name, netns=ns).stdout
        maxima, current = channels.split("Current hardware settings:")
        assert "Combined:\t1" in maxima and "Combined:\t1" in current, channels
        assert sh("ethtool", "-G", t.name, "rx", "64", netns=ns, check=False).returncode != 0
        # The NIC's queue 0 rings and its queues, as the driver knows them.
        t.publish_stats(None, shape=NicShape(rx_ring=512, tx_ring=64, ring_max=2048, rx_queues=6, tx_queues=3))
        maxima, current = sh("ethtool", "-g", t.name, netns=ns).stdout.split("Current hardware settings:")
        assert "RX:\t\t2048" in maxima and "TX:\t\t2048" in maxima, maxima
        assert "RX:\t\t512" in current and "TX:\t\t64" in current, current
        channels = sh("ethtool", "-l", t.name, netns=ns).stdout
        maxima, current = channels.split("Current hardware settings:")
        assert "RX:\t\t6" in maxima and "TX:\t\t3" in maxima and "Combined:\tn/a" in maxima, channels
        assert "RX:\t\t1" in current and "TX:\t\t1" in current, channels
        t.close()
        assert "RX:\t\t0" in sh("ethtool", "-g", t.name, netns=ns).stdout.split("Current hardware settings:")[1]
    finally:
        sh("ip", "-n", ns, "link", "del", t.name, check=False)


def test_ethtool_c_and_C_rx_usecs_go_through_the_tunnel(ns: str) -> None:
    t = _open(ns)
    try:
        assert "rx-usecs: 0" in sh("ethtool", "-c", t.name, netns=ns).stdout    # nothing known yet
        t.publish_stats(None, rx_usecs=50)                                     # the driver's NIC: 50 us
        assert "rx-usecs: 50" in sh("ethtool", "-c", t.name, netns=ns).stdout
        assert t.read_config().rx_usecs is None
        poller = select.poll()
        poller.register(t.fileno(), select.POLLPRI)
        sh("ethtool", "-C", t.name, "rx-usecs", "120", netns=ns)
        assert poller.poll(2000), "ethtool -C did not wake the driver"
        assert t.read_config().rx_usecs == 120
        t.publish_stats(None, rx_usecs=120)
        assert "rx-usecs: 120" in sh("ethtool", "-c", t.name, netns=ns).stdout
        too_long = sh("ethtool", "-C", t.name, "rx-usecs", str(C("RX_USECS_MAX") + 1), netns=ns, check=False)
        assert too_long.returncode != 0
        assert sh("ethtool", "-C", t.name, "tx-usecs", "5", netns=ns, check=False).returncode != 0
        assert t.read_config().rx_usecs == 120
    finally:
        t.destroy()


# --------------------------------------------------------------------------- ethtool -N / -n


def _ethtool(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("ethtool", *args, netns=ns, check=check)


def _refused(result: subprocess.CompletedProcess) -> bool:
    """ethtool -N failed (ethtool 6.1 exits 0 when the kernel refuses an insert: read its message)."""
    return result.returncode != 0 or "Cannot" in result.stderr


def _filters(listing: str) -> dict[int, str]:
    """ethtool -n's rules by location: the text of each ``Filter: N`` block."""
    blocks = listing.split("Filter: ")[1:]
    return {int(b.split("\n", 1)[0]): b for b in blocks}


#: The driver's table: ethertype 0x88b5 -> RX queue 1; udp dport 7000 over IPv4 *and* IPv6 -> 2 (no
#: ethtool flow type says that); tcp4 to 02:00:5e:00:53:44 -> 0, the kernel's.
_TABLE = [SteerRule(queue=1, ethertype=0x88B5), SteerRule(queue=2, ip_proto=17, dport=7000),
          SteerRule(queue=0, dmac=int.from_bytes(parse_mac("02:00:5e:00:53:44"), "little"), ethertype=0x0800,
                    ip_proto=6)]


def test_ethtool_n_lists_the_drivers_steering_table_and_says_what_it_leaves_out(ns: str) -> None:
    t = _open(ns)
    try:
        # No table published (no driver with a NIC): ethtool -n/-N are not supported.
        assert _ethtool(ns, "-n", t.name, check=False).returncode != 0
        assert _refused(_ethtool(ns, "-N", t.name, "flow-type", "udp4", "dst-port", "9000", "action", "1",
                                 check=False))
        t.publish_rules(_TABLE, capacity=16, rx_queues=4)
        listing = _ethtool(ns, "-n", t.name).stdout
        assert "4 RX rings available" in listing and "Total 2 rules" in listing, listing
        rules = _filters(listing)
        assert sorted(rules) == [0, 2], listing       # rule 1 matches IPv4 and IPv6: no flow type says it
        assert "Raw Ethernet" in rules[0] and "Ethertype: 0x88B5" in rules[0] and "queue 1" in rules[0], listing
        assert "TCP over IPv4" in rules[2] and "Dest MAC addr: 02:00:5E:00:53:44" in rules[2], listing
        assert "Direct to queue 0" in rules[2], listing
        assert "rule 1 not shown: no flow type says it" in sh("dmesg").stdout
        assert _ethtool(ns, "-n", t.name, "rule", "1", check=False).returncode != 0
        assert "Ethertype: 0x88B5" in _ethtool(ns, "-n", t.name, "rule", "0").stdout
    finally:
        t.destroy()


#: A table ethtool shows whole (udp dport 7000 over IPv6 only), so that the kernel log's rate limit
#: keeps room for the refusals below.
_SHOWN = [_TABLE[0], SteerRule(queue=2, ethertype=0x86DD, ip_proto=17, dport=7000), _TABLE[2]]


def test_ethtool_N_reaches_the_driver_and_shows_at_once(ns: str) -> None:
    t = _open(ns)
    try:
        t.publish_rules(_SHOWN, capacity=5, rx_queues=4)
        t.read_config()
        poller = select.poll()
        poller.register(t.fileno(), select.POLLPRI)
        added = _ethtool(ns, "-N", t.name, "flow-type", "udp4", "dst-port", "9000", "action", "1").stdout
        assert "Added rule with ID 3" in added, added
        assert poller.poll(2000), "ethtool -N did not wake the driver"
        # Shown before the driver handled it: the table as the request will leave it.
        assert "Dest port: 9000 mask: 0x0" in _filters(_ethtool(ns, "-n", t.name).stdout)[3]
        req = t.take_rule_request()
        assert (req.op, req.location, req.rule) == ("add", 3, SteerRule(queue=1, ethertype=0x0800, ip_proto=17,
                                                                         dport=9000))
        assert t.take_rule_request() is None
        # A publish from before the driver applied it (done: 0) still shows it ...
        t.publish_rules(_SHOWN, capacity=5, rx_queues=4)
        assert 3 in _filters(_ethtool(ns, "-n", t.name).stdout)
        # ... one that says the driver handled it shows what the driver has: here it refused it.
        t.publish_rules(_SHOWN, capacity=5, rx_queues=4, done=req.seq)
        assert 3 not in _filters(_ethtool(ns, "-n", t.name).stdout)

        # ip4 with a protocol, udp6, ether with a destination MAC, each its own rule.
        _ethtool(ns, "-N", t.name, "flow-type", "ip4", "l4proto", "47", "action", "0")
        _ethtool(ns, "-N", t.name, "flow-type", "ether", "dst", "02:00:5e:00:53:55", "action", "3")
        full = _ethtool(ns, "-N", t.name, "flow-type", "udp6", "dst-port", "53", "action", "2", check=False)
        assert _refused(full) and "No space left" in full.stderr, full     # the table (5 entries) is full
        reqs = [t.take_rule_request(), t.take_rule_request()]
        assert [r.rule for r in reqs] == [
            SteerRule(queue=0, ethertype=0x0800, ip_proto=47),
            SteerRule(queue=3, dmac=int.from_bytes(parse_mac("02:00:5e:00:53:55"), "little"))]
        t.publish_rules(_SHOWN + [r.rule for r in reqs], capacity=5, rx_queues=4, done=reqs[-1].seq)

        # delete: the rule it names goes with the request, for the driver to check.
        _ethtool(ns, "-N", t.name, "delete", "0")
        rules = _filters(_ethtool(ns, "-n", t.name).stdout)
        assert sorted(rules) == [0, 1, 2, 3] and "UDP over IPv6" in rules[0], rules    # later ones moved up
        req = t.take_rule_request()
        assert (req.op, req.location, req.rule) == ("delete", 0, _SHOWN[0])
        assert _refused(_ethtool(ns, "-N", t.name, "delete", "9", check=False))

        # What the NIC cannot do is refused, with the reason in the kernel log.
        for bad in (("flow-type", "udp4", "dst-port", "9000", "action", "-1"),           # drop
                    ("flow-type", "udp4", "dst-port", "9000", "action", "4"),            # no RX queue 4
                    ("flow-type", "udp4", "src-ip", "198.18.0.1", "action", "1"),        # addresses
                    ("flow-type", "tcp4", "src-port", "80", "action", "1"),
                    ("flow-type", "sctp4", "action", "1"),
                    ("flow-type", "udp4", "dst-port", "9000", "m", "0xff", "action", "1"),   # part of a port
                    ("flow-type", "udp4", "dst-port", "9000", "action", "1", "loc", "0")):   # not at the end
            assert _refused(_ethtool(ns, "-N", t.name, *bad, check=False)), bad
        assert t.take_rule_request() is None
        assert "ethtool -N: steering cannot drop" in sh("dmesg").stdout

        # The driver goes: no table any more, nothing left to take.
        t.close()
        assert _ethtool(ns, "-n", t.name, check=False).returncode != 0
    finally:
        sh("ip", "-n", ns, "link", "del", t.name, check=False)


def test_a_bad_steering_table_is_einval_and_a_lost_request_can_be_taken_again(ns: str) -> None:
    t = _open(ns)
    try:
        fd = t.fileno()
        rule = spec.RULE.pack(**SteerRule(queue=1, ethertype=0x88B5).words(0))
        buf = ctypes.create_string_buffer(rule)

        def table(**kw: int) -> bytearray:
            values = dict(count=1, capacity=4, rx_queues=2, rules=ctypes.addressof(buf)) | kw
            return bytearray(spec.RULE_TABLE.pack(**values))
        assert errno_of(fd, "IOC_PUBLISH_RULES", table()) == 0
        for bad in (dict(capacity=C("RULES_MAX") + 1), dict(count=5), dict(rx_queues=0), dict(rx_queues=1),
                    dict(rx_queues=C("RX_QUEUES_MAX") + 1), dict(flags=1), dict(reserved=1)):
            assert errno_of(fd, "IOC_PUBLISH_RULES", table(**bad)) == errno.EINVAL, bad
        assert errno_of(fd, "IOC_PUBLISH_RULES", table(rules=8)) == errno.EFAULT
        for bad in (dict(location=1), dict(flags=0x10), dict(dport=0x10000), dict(dmac=1 << 48)):
            buf.raw = spec.RULE.pack(**(SteerRule(queue=1, ethertype=0x88B5).words(0) | bad))
            assert errno_of(fd, "IOC_PUBLISH_RULES", table()) == errno.EINVAL, bad
        buf.raw = rule
        assert errno_of(fd, "IOC_PUBLISH_RULES", table()) == 0

        _ethtool(ns, "-N", t.name, "flow-type", "ether", "proto", "0x88b6", "action", "1")
        page, addr = _unwritable_copy(bytearray(spec.RULE_REQ.size))
        assert errno_of(fd, "IOC_TAKE_RULE_REQ", addr) == errno.EFAULT
        page.close()
        req = t.take_rule_request()         # not lost
        assert req is not None and req.rule == SteerRule(queue=1, ethertype=0x88B6)
        assert errno_of(fd, "IOC_TAKE_RULE_REQ", bytearray(spec.RULE_REQ.size)) == errno.EAGAIN
    finally:
        t.destroy()
