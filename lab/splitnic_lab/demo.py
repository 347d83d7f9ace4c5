"""The split in action, on a simulated NIC: ``make demo`` / ``splitnic demo``.

Ref: docs/architecture.md (the whole picture); :mod:`.sim_lab` (topology,
traffic and checks).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field

from .sim_lab import ECHO_PORT, PEER_IP, Check, SimLab, ping_from_peer, tcp_from_peer, udp_from_peer

__all__ = ["DemoResult", "run_demo"]

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What ``splitnic demo`` showed."""
    checks: list[Check]
    counters: dict[str, dict[str, int]]
    kernel_kind: str
    seconds: float
    hits: list[tuple[str, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check held."""
        return all(c.ok for c in self.checks)


def _table(counters: dict[str, dict[str, int]]) -> list[str]:
    lines = [f"  {'queue':<16}{'packets':>10}{'bytes':>12}{'drops':>8}"]
    for name, c in counters.items():
        if "unused" not in name:
            lines.append(f"  {name:<16}{c['packets']:>10}{c['bytes']:>12}{c['drops']:>8}")
    return lines


def run_demo(*, simulator: str = "verilator", kernel: str = "auto", live: bool | None = None,
             out=sys.stdout) -> DemoResult:
    """Run the demo end to end, printing progress, a live view and a summary; returns the result."""
    live = out.isatty() if live is None else live
    say = lambda text: print(f"demo: {text}", file=out, flush=True)  # noqa: E731
    started = time.monotonic()
    lab = SimLab(simulator=simulator, kernel=kernel, progress=say)
    lab.start()
    try:
        ping, tcp, udp, guard = (Check("ping from the peer (kernel path)"), Check("TCP exchange (kernel path)"),
                                 Check(f"UDP port {ECHO_PORT} echo (fast path)"),
                                 Check(f"kernel socket on UDP port {ECHO_PORT} untouched"))
        say(f"traffic from the peer {PEER_IP}: ping and TCP to the kernel, UDP to port {ECHO_PORT} "
            "at the same time")
        threads = [threading.Thread(target=fn, args=args, daemon=True) for fn, args in (
            (ping_from_peer, (lab, ping)), (tcp_from_peer, (lab, tcp)), (udp_from_peer, (lab, udp, guard)))]
        for t in threads:
            t.start()
        drawn = [0]

        def view() -> None:
            lines = [f"live ({time.monotonic() - started:5.1f} s):"] + _table(lab.counters())
            if live:
                out.write("\x1b[F\x1b[K" * drawn[0] + "\n".join(lines) + "\n")
                drawn[0] = len(lines)
            else:
                c = lab.counters()
                out.write("demo: live: " + ", ".join(f"{k} {v['packets']}" for k, v in c.items()
                                                     if "unused" not in k) + "\n")
            out.flush()

        lab.run_while(lambda: any(t.is_alive() for t in threads), timeout=300, every=view,
                      period=0.5 if live else 5.0)
        # Let the last frames drain (replies in flight), then read the counters once more.
        lab.run_while(lambda: True, timeout=0.5)
        result = DemoResult([ping, tcp, udp, guard], lab.counters(), lab.tunnel.tunnel.kind,
                            time.monotonic() - started,
                            [(str(rule), hits) for _i, rule, _q, hits in lab.fast.listing()])
    finally:
        lab.close()
    print("\nsummary: which path each packet took", file=out)
    for line in _table(result.counters):
        print(line, file=out)
    for rule, hits in result.hits:
        print(f"  steering rule '{rule}': {hits} hits", file=out)
    for c in result.checks:
        print(f"  [{'PASS' if c.ok else 'FAIL'}] {c.name}: {c.detail}", file=out)
    print(f"demo {'passed' if result.ok else 'FAILED'} in {result.seconds:.0f} s "
          f"({result.kernel_kind} tunnel; namespaces, TAP and simulator removed)", file=out, flush=True)
    return result
