"""Soak: thousands of frames of random sizes through several queues, nothing lost, nothing leaked.

Every frame carries (TX queue, sequence number); the steering table spreads
them over three RX queues by ethertype; the NIC loops them back internally.
The driver holds some packets for a while and releases them out of order.
At the end every frame arrived exactly once and intact, in order per
(TX queue, RX queue) pair, and every queue's buffer books balance.
"""

from __future__ import annotations

import random
import time

import pytest

from splitnic.rules import RuleSet, parse_rule

from .conftest import LINKS, NIC_MAC, PEER_MAC, eth_standin

#: Frames per link: the RTL simulator moves a few hundred frames per second.
FRAMES = {"mmio": 100000, "softsim": 10000, "sim": 1200, "eth": 10000}
#: Frames in flight at most, below the RX buffers posted, so the NIC never has to drop.
WINDOW = 24
ETHERTYPES = (0x88B5, 0x88B6, 0x88B7)   # -> kernel queue 0, app0 queue 1, app1 queue 2


def _frame(rng: random.Random, txq: int, seq: int) -> tuple[bytes, int]:
    kind = rng.randrange(3)
    size = rng.choice((60, 61, 64, 127, 128, 1514)) if rng.random() < 0.2 else rng.randint(60, 1514)
    head = NIC_MAC + PEER_MAC + ETHERTYPES[kind].to_bytes(2, "big") + bytes([txq]) + seq.to_bytes(4, "big")
    return head + rng.randbytes(size - len(head)), kind


@pytest.mark.parametrize("link", LINKS)
def test_soak(link: str, request: pytest.FixtureRequest, tmp_path) -> None:
    from splitnic_sim.softnic import SoftNic
    import splitnic
    model = None
    if link == "eth":
        with eth_standin(local_size=1 << 20) as (_stand_in, spec):
            nic = splitnic.open(spec)
            try:
                _soak(nic, FRAMES[link], timeout=60)
            finally:
                nic.close()
        return
    if link == "sim":
        spec = request.getfixturevalue("sim_link")
    else:
        model = SoftNic(sim_socket=tmp_path / "s.sock" if link == "softsim" else None).start()
        spec = model.link
    nic = splitnic.open(spec)
    try:
        _soak(nic, FRAMES[link], timeout=100 if link == "sim" else 60)
    finally:
        nic.close()
        if model:
            model.close()


def _soak(nic, count: int, timeout: float) -> None:
    rng = random.Random(4)
    nic.reset()
    nic.mac = NIC_MAC
    nic.set_loopback(True)
    rules = RuleSet([parse_rule("ethertype 0x88b6 -> app0"), parse_rule("ethertype 0x88b7 -> app1")])
    nic.set_rules(rules.entry_values(i) for i in range(len(rules.rules)))
    rxqs = [nic.rx_queue(q, ring_log2=5, buf_size=1536) for q in range(3)]
    txqs = [nic.tx_queue(q, ring_log2=4, buf_size=1536) for q in range(2)]
    expected: dict[tuple[int, int], bytes] = {}
    kinds: dict[tuple[int, int], int] = {}
    last_seq: dict[tuple[int, int], int] = {}
    held: list = []
    sent = received = 0
    seqs = [0, 0]
    deadline = time.monotonic() + timeout
    while received < count:
        assert time.monotonic() < deadline, f"only {received} of {count} frames came back; stats {nic.stats()}"
        if sent < count and sent - received < WINDOW:
            q = rng.randrange(2)
            n = min(rng.randint(1, 8), count - sent, WINDOW - (sent - received))
            batch = []
            for _ in range(n):
                f, kind = _frame(rng, q, seqs[q])
                expected[(q, seqs[q])] = f
                kinds[(q, seqs[q])] = kind
                batch.append(f)
                seqs[q] += 1
            taken = txqs[q].tx_burst(batch)
            for f in batch[taken:]:  # ring full: take them back
                seqs[q] -= 1
                del expected[(q, seqs[q])]
            sent += taken
        got_any = False
        for rq, rxq in enumerate(rxqs):
            for p in rxq.rx_burst(rng.choice((1, 4, 32))):
                got_any = True
                data = p.data
                key = (data[14], int.from_bytes(data[15:19], "big"))
                assert key in expected, f"unexpected or duplicate frame {key} on RX queue {rq}"
                assert bytes(data) == expected.pop(key), f"frame {key} corrupted"
                assert kinds.pop(key) == rq, f"frame {key} steered to queue {rq}"
                assert last_seq.get((key[0], rq), -1) < key[1], f"frame {key} out of order on queue {rq}"
                last_seq[(key[0], rq)] = key[1]
                del data
                received += 1
                if rng.random() < 0.3:
                    held.append(p)
                else:
                    p.release()
        if len(held) > 12 or (held and rng.random() < 0.05):
            rng.shuffle(held)
            keep = rng.randrange(len(held))
            for p in held[keep:]:
                p.release()
            held = held[:keep]
        if not got_any:
            time.sleep(0.0002)
    for p in held:
        p.release()
    assert not expected
    for txq in txqs:
        assert txq.flush()
        assert txq.check()["lent"] == 0
    for rxq in rxqs:
        rxq.rx_burst(1)  # re-post what was released last
        assert rxq.check()["lent"] == 0
    stats = nic.stats()
    assert stats["tx_ok"] == count and sum(stats[f"rxq{q}_packets"] for q in range(3)) == count
    assert sum(stats[f"rxq{q}_drops"] for q in range(3)) == 0
