"""Applications in processes of their own beside snic0, on the software NIC, with a kernel peer
(and, for two applications at once, on the NIC's RTL under Verilator: it has 8 TX queues).

Ref: hostdrv/splitnic/app_server.py (the primary grants and reclaims),
hostdrv/splitnic/app_client.py (splitnic.attach), tests/fastpath/app_proc.py
(the application process these tests run), tests/fastpath/app_lab.py (the lab).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from splitnic_lab.app_lab import HOST_IP, SPLITNIC, AppLab, TXQ_REGS, echoes, finish


def start_app(lab: AppLab, name: str, port: int, *extra: str):
    """Start tests/fastpath/app_proc.py; returns it and its (RX, TX) queue once it is attached."""
    proc, line = lab.start(["-m", "tests.fastpath.app_proc", "--apps", str(lab.apps_path), "--name", name,
                            "--port", str(port), *extra], "ready ")
    rxq, txq = map(int, line.split()[1:])
    return proc, (rxq, txq)


@pytest.fixture(params=["mmio", "sim"])
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppLab]:
    """The lab on the software NIC's mmio link (the application writes its doorbells) or its sim
    link (the primary carries them), or (``verilator``) on the NIC's RTL behind the sim link, or
    (``eth``) behind the board's stand-in (the primary carries doorbells, descriptors and TX frames)."""
    if request.param in ("verilator", "eth"):
        lab = AppLab(tmp_path, simulator=request.param)
    else:
        lab = AppLab(tmp_path, **({"sim_socket": tmp_path / "nic.sock"} if request.param == "sim" else {}))
    try:
        yield lab
    finally:
        lab.close()


@pytest.mark.parametrize("lab", ["mmio", "sim", "verilator", "eth"], indirect=True)
def test_two_application_processes_and_snic0_each_get_only_their_traffic_zero_copy(lab: AppLab) -> None:
    a, (rx_a, tx_a) = start_app(lab, "alpha", 9001)
    b, (rx_b, tx_b) = start_app(lab, "beta", 9002)
    assert len({rx_a, rx_b, 0}) == 3 and len({tx_a, tx_b, 0}) == 3, "each has queues of its own"
    listed = subprocess.run([str(SPLITNIC), "apps", "--apps", str(lab.apps_path)], capture_output=True, text=True,
                            timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert f"alpha            pid {a.pid:<7} RX queue {rx_a}  TX queue {tx_a}  udp dport 9001" in listed.stdout
    rules = subprocess.run([str(SPLITNIC), "rules", "list", "--name", lab.name], capture_output=True, text=True,
                           timeout=30)
    assert "udp dport 9001 -> alpha" in rules.stdout and "udp dport 9002 -> beta" in rules.stdout, rules
    kernel_a, kernel_b = lab.host_socket(9001), lab.host_socket(9002)
    peer = lab.peer_socket()
    assert echoes(peer, 9001, 20, b"to alpha", lab.wake_latency) == 20
    assert echoes(peer, 9002, 20, b"to beta", lab.wake_latency) == 20
    assert lab.ping().returncode == 0, "snic0 (the kernel's queue) works beside them"
    for sock in (kernel_a, kernel_b):
        with pytest.raises(socket.timeout):
            sock.recv(2048)          # nothing the applications took reached the kernel
    counts_a, counts_b = finish(a), finish(b)
    assert counts_a["frames"] == 20 and counts_b["frames"] == 20
    assert counts_a["foreign"] == counts_b["foreign"] == 0
    assert counts_a["outside"] == counts_b["outside"] == 0, "every frame was read in the NIC's own buffers"
    assert counts_a["echoed"] == counts_b["echoed"] == 20


@pytest.mark.parametrize("lab", ["mmio", "sim", "eth"], indirect=True)
def test_sigkill_mid_traffic_gives_the_port_back_to_the_kernel_and_touches_nothing_else(lab: AppLab) -> None:
    a, _ = start_app(lab, "alpha", 9001)
    b, _ = start_app(lab, "beta", 9002)
    kernel_a = lab.host_socket(9001)
    sender = lab.peer_socket(timeout=0.05)
    stop = threading.Event()

    def blast() -> None:
        i = 0
        while not stop.is_set():
            try:
                sender.sendto(b"blast %d" % i, (HOST_IP, 9001))
            except OSError:          # the peer's socket buffer is full (a busy machine): go on
                pass
            i += 1
            time.sleep(0.0005)
    thread = threading.Thread(target=blast, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        a.kill()                     # SIGKILL: no goodbye, the socket's hangup is all the primary sees
        killed = time.monotonic()
        a.wait()
        got = None
        while got is None and time.monotonic() - killed < 5:
            try:
                got = kernel_a.recv(2048)
            except socket.timeout:
                pass
        assert got is not None and got.startswith(b"blast"), "port 9001 is the kernel's again"
        assert time.monotonic() - killed < 1.0, f"the kernel got port 9001 back only after " \
            f"{time.monotonic() - killed:.2f} s"
    finally:
        stop.set()
        thread.join()
    assert lab.up.proc.poll() is None, "splitnic up runs on"
    assert lab.ping().returncode == 0, "snic0 still works"
    assert echoes(lab.peer_socket(), 9002, 10, b"beta after") == 10, "the other application still works"
    # A restarted application gets a queue again, and the port.
    again, _ = start_app(lab, "alpha", 9001)
    assert echoes(lab.peer_socket(), 9001, 10, b"alpha again") == 10
    assert finish(again)["foreign"] == 0
    assert finish(b)["frames"] >= 10


@pytest.mark.parametrize("lab", ["mmio", "sim", "eth"], indirect=True)
def test_a_bad_descriptor_is_contained_to_its_own_queue(lab: AppLab) -> None:
    good, _ = start_app(lab, "good", 9002)
    bad, (_, bad_tx) = start_app(lab, "bad", 9001, "--bad-descriptor")
    drops = TXQ_REGS.offset(bad_tx, "DROPS")
    deadline = time.monotonic() + 5
    while lab.nic.read_reg(drops) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lab.nic.read_reg(drops) == 1, "the NIC refused the descriptor and counted it on that queue"
    assert lab.nic.s.dma_errors >= 1, "the NIC saw a buffer outside its DMA memory"
    assert echoes(lab.peer_socket(), 9001, 5, b"bad still") == 5, "its own queue carries on"
    assert echoes(lab.peer_socket(), 9002, 5, b"good") == 5
    assert lab.ping().returncode == 0
    bad.kill()
    bad.wait()
    again, (_, tx) = start_app(lab, "bad", 9001)
    assert echoes(lab.peer_socket(), 9001, 5, b"reclaimed") == 5, "the queue was reclaimed and granted again"
    assert finish(again)["echoed"] == 5
    assert finish(good)["foreign"] == 0


def test_an_asyncio_application_sleeps_on_the_eventfd(lab: AppLab) -> None:
    import asyncio

    import splitnic

    async def serve(app, want: int) -> list[bytes]:
        got: list[bytes] = []
        async for batch in app.batches():
            got += [bytes(frame[42:]).rstrip(b"\0") for frame in batch]
            if len(got) >= want:
                return got
        return got

    with splitnic.attach("udp dport 9003", name="aio", path=lab.apps_path) as app:
        sender = lab.peer_socket()

        async def main() -> list[bytes]:
            task = asyncio.create_task(serve(app, 3))
            for i in range(3):
                await asyncio.sleep(0.1)      # the application is asleep in the event loop each time
                sender.sendto(b"aio %d" % i, (HOST_IP, 9003))
            return await asyncio.wait_for(task, 5)
        assert asyncio.run(main()) == [b"aio 0", b"aio 1", b"aio 2"]


def test_swap_udp_turns_the_udp_frames_of_a_batch_into_their_echoes_in_c(tmp_path: Path) -> None:
    import splitnic
    from splitnic.frames import udp_frame
    from splitnic_sim.softnic import SoftNic
    from splitnic_spec import CSR_MAP
    nic_mac, peer_mac = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
    udp = udp_frame(nic_mac, peer_mac, "10.0.0.2", "10.0.0.1", 5000, 9000, b"hello").ljust(60, b"\0")
    other = nic_mac + peer_mac + b"\x88\xb5" + bytes(46)
    with SoftNic() as model, splitnic.open(model.link) as nic:
        nic.mac = nic_mac
        rxq = nic.rx_queue(0)
        for frame in (other, udp, other, udp):
            model.inject(frame)
        deadline = time.monotonic() + 5
        packets = CSR_MAP.array("RXQ").offset(0, "PACKETS")
        while model.read_reg(packets) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        with rxq.rx_batch(8) as batch:
            assert len(batch) == 4
            assert batch.swap_udp() == 2
            echo = udp_frame(peer_mac, nic_mac, "10.0.0.1", "10.0.0.2", 9000, 5000, b"hello")
            assert bytes(batch[0]).rstrip(b"\0") == echo and bytes(batch[1]).rstrip(b"\0") == echo
            assert bytes(batch[2])[:60] == other and bytes(batch[3])[:60] == other


@pytest.mark.parametrize("lab", ["eth"], indirect=True)
def test_a_board_reset_ends_the_leases_and_an_application_attaches_again(lab: AppLab) -> None:
    # The board's reset takes the application's queues with it: the primary ends the lease (the
    # application hears its socket hang up), snic0 carries on, and the application attaches again.
    app, _ = start_app(lab, "alpha", 9001)
    assert echoes(lab.peer_socket(), 9001, 5, b"before") == 5
    lab.standin.reset_board()
    try:
        _, err = app.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        raise AssertionError("the application still runs on queues its board lost") from None
    assert "the NIC's board was reset and took this application's queues with it; attach again" in err, err
    assert lab.up.proc.poll() is None, "splitnic up runs on"
    assert lab.ping().returncode == 0, "snic0 works after the board's reset"
    again, _ = start_app(lab, "alpha", 9001)
    assert echoes(lab.peer_socket(), 9001, 5, b"after") == 5
    assert finish(again)["echoed"] == 5


@pytest.mark.parametrize("lab", ["eth"], indirect=True)
def test_on_eth_a_frame_outside_the_applications_buffers_is_not_carried_across(lab: AppLab) -> None:
    # The primary sends what an application's TX descriptors name across the cable only from the
    # application's own TX buffers; one naming other NIC-local memory is counted and its bytes stay.
    stray, _ = start_app(lab, "stray", 9001, "--stray-descriptor")
    assert echoes(lab.peer_socket(), 9001, 5, b"carries on") == 5, "its queue carries on"
    finish(stray)
    deadline = time.monotonic() + 5
    while "stray" in subprocess.run([str(SPLITNIC), "apps", "--apps", str(lab.apps_path)], capture_output=True,
                                    text=True, timeout=30).stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    status, out = lab.up.stop(signal.SIGTERM)
    assert status == 0, out
    assert "application stray" in out and "1 TX descriptors named memory outside its buffers" in out, out[-3000:]


def test_a_frame_that_lands_before_the_application_sleeps_wakes_it_at_once(lab: AppLab) -> None:
    import select

    import splitnic
    with splitnic.attach("udp dport 9004", name="late", path=lab.apps_path) as app:
        lab.peer_socket().sendto(b"early", (HOST_IP, 9004))
        deadline = time.monotonic() + 5
        while not app.pending() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert app.pending(), "the frame landed"
        # Its cause fired while the queue was not armed; arming clears it.  The application asks to
        # sleep as if it had looked just before the frame landed: the primary must see the queue's
        # CPL register past its index and wake it, or it would sleep until the next frame.
        app._arm()
        assert select.select([app.fileno()], [], [], 2.0)[0], "not woken for a frame already there"
        with app.rx_batch() as batch:
            assert [bytes(f[42:47]) for f in batch] == [b"early"]


def test_an_idle_application_is_not_woken_for_nothing(lab: AppLab) -> None:
    import splitnic
    with splitnic.attach("udp dport 9005", name="quiet", path=lab.apps_path) as app:
        sender = lab.peer_socket()
        got, early = 0, 0
        for i in range(5):
            sender.sendto(b"one", (HOST_IP, 9005))
            end = time.monotonic() + 0.6
            while time.monotonic() < end:
                with app.rx_batch() as batch:
                    got += len(batch)
                    if len(batch):
                        continue
                started = time.monotonic()
                if not app.wait(0.3) and time.monotonic() - started < 0.25:
                    early += 1        # woken without a frame
        # A datagram may take longer than its 0.6 s on a loaded machine (the first waits for ARP):
        # it still has to arrive, only later.
        deadline = time.monotonic() + 5
        while got < 5 and time.monotonic() < deadline:
            app.wait(0.2)
            with app.rx_batch() as batch:
                got += len(batch)
        assert got == 5
        # A woken application may find its frame taken already (it looked while awake): one such
        # wake a frame at most.  Causes that were never cleared would wake it thousands of times.
        assert early <= 5, f"{early} wake-ups without a frame"


def test_when_splitnic_up_stops_a_sleeping_application_hears_it(lab: AppLab) -> None:
    import asyncio
    import signal

    import splitnic
    from splitnic.errors import SplitnicError
    with splitnic.attach("udp dport 9006", name="orphan", path=lab.apps_path) as app:
        status, out = lab.up.stop(signal.SIGTERM)
        assert status == 0, out
        started = time.monotonic()
        with pytest.raises(SplitnicError, match="splitnic up went away"):
            app.wait(5)
        with pytest.raises(SplitnicError, match="splitnic up went away"):
            asyncio.run(asyncio.wait_for(app.wait_async(), 5))
        assert time.monotonic() - started < 2, "noticed at once, not at a timeout"


def test_bad_requests_are_refused_in_one_line_and_change_nothing(lab: AppLab) -> None:
    import json

    import splitnic
    from splitnic.errors import SplitnicError

    def ask(message: bytes) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            sock.settimeout(5)
            sock.connect(str(lab.apps_path))
            sock.send(message)
            reply = json.loads(sock.recv(65536))
            assert sock.recv(65536) == b"", "a refused attach ends the conversation"
        return reply

    for message, error in ((b"not json", "bad request"), (b"[1, 2]", "bad request"),
                           (b'{"op": "fly"}', "unexpected op 'fly'"),
                           (b'{"op": "attach", "name": "x", "rules": []}', "at least one rule"),
                           (b'{"op": "attach", "name": "x", "rules": ["udp dport 1 -> y"]}', "match only"),
                           (b'{"op": "attach", "name": "x", "rules": ["udp dport 70000"]}', "dport must be"),
                           (b'{"op": "attach", "name": "kernel", "rules": ["udp"]}', "in use"),
                           (b'{"op": "attach", "name": "x", "rules": ["udp"], "ring_log2": 30}', "ring_log2")):
        reply = ask(message)
        assert not reply["ok"] and error in reply["error"] and "\n" not in reply["error"], (message, reply)
    with splitnic.attach("udp dport 9007", name="taken", path=lab.apps_path):
        with pytest.raises(SplitnicError, match="'taken' is in use"):
            splitnic.attach("udp dport 9008", name="taken", path=lab.apps_path)
    assert lab.up.proc.poll() is None and lab.ping().returncode == 0
    assert echoes(lab.peer_socket(timeout=0.3), 9001, 3, b"after") == 0, "no rule was left behind"
    a, _ = start_app(lab, "alpha", 9001)
    assert echoes(lab.peer_socket(), 9001, 3, b"fine") == 3, "every queue came back"
    finish(a)


def test_an_application_gone_before_its_grant_arrives_costs_the_primary_nothing(lab: AppLab) -> None:
    # It asks for queues and is gone before the answer (it timed out, or died): the grant fails to
    # send, and the primary takes everything back and runs on.
    import json
    for _ in range(3):
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            sock.connect(str(lab.apps_path))
            sock.send(json.dumps({"op": "attach", "name": "gone", "rules": ["udp dport 9001"]}).encode())
    time.sleep(0.5)
    assert lab.up.proc.poll() is None, "splitnic up ended: " + lab.up.stop(signal.SIGTERM)[1][-2000:]
    assert lab.ping().returncode == 0
    a, _ = start_app(lab, "gone", 9001)
    assert echoes(lab.peer_socket(), 9001, 3, b"after") == 3, "the name and the queues came back"
    finish(a)
