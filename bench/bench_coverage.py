"""Line and toggle coverage of the RTL by its cocotb tests on Verilator (``make coverage``).

Ref: docs/simulation.md ("Coverage").

Runs the RTL's cocotb tests (TESTS below, Verilator only) with SPLITNIC_COVERAGE
set: each run is built with ``--coverage-line --coverage-toggle`` and writes its
counts (Verilator's coverage.dat format) into COUNTS.  The counts are merged
here; the figures are per Verilog module (Amaranth names them by hierarchy:
``snic_nic.mac_rx.match``), Verilator's coverage points of that module hit at
least once: line coverage over its ``line`` and ``branch`` points (statement
blocks and both arms of each if/case; not the never-true guard Yosys's Verilog
backend puts at the top of every ``always @*``, see BACKEND_GUARD), toggle
coverage over its ``toggle`` points (each bit of each signal, 0->1 and 1->0).  One summary line per module
is printed, the figures go to bench/coverage.json, and an lcov tracefile of
the lines becomes an HTML report (genhtml, Debian's lcov) in HTML_DIR.

The Amaranth simulator's unit tests (tests/gateware/test_rx_engine.py and the
like) do not run on Verilator and are not counted: the figures are what the
cocotb tests alone exercise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Iterable

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / ".cache" / "coverage"
COUNTS = OUT / "counts"
HTML_DIR = OUT / "html"
#: The RTL's cocotb tests, Verilator runs only (Icarus has no coverage here).
TESTS = ["tests/gateware/test_id_block_cocotb.py", "tests/gateware/test_mac_cocotb.py",
         "tests/gateware/test_nic_cocotb.py", "tests/gateware/test_nic_linerate.py",
         "tests/gateware/test_hostlink_cocotb.py", "tests/gateware/test_hostlink_linerate.py"]
#: Seconds the tests may take at most (their coverage builds included).
TIMEOUT = 3600

LINE_TYPES = ("line", "branch")
#: Yosys's Verilog backend opens every ``always @*`` block with ``if (\$auto$verilog_backend.cc:...
#: dump_module$N ) begin end`` on a ``reg ... = 0`` that nothing ever writes (it only puts the
#: block in the sensitivity list, so simulators run it at time 0).  That ``if`` is no line of the
#: design: its taken arm can never run and its other arm always does.  Both arms (Verilator's
#: ``branch`` points on that line) are left out of the figures.
BACKEND_GUARD = "$auto$verilog_backend.cc:"


class ModuleCoverage:
    """Coverage points of one Verilog module: how many there are and how many were hit.

    (A plain class: bench/run.py loads this file without registering it as a module,
    which dataclasses need.)"""

    def __init__(self) -> None:
        self.lines = self.lines_hit = self.toggles = self.toggles_hit = 0

    def __repr__(self) -> str:
        return (f"ModuleCoverage(lines {self.lines_hit}/{self.lines}, "
                f"toggles {self.toggles_hit}/{self.toggles})")

    @property
    def line_percent(self) -> float | None:
        """None for a module without statements (a top that only wires its parts together)."""
        return round(100.0 * self.lines_hit / self.lines, 1) if self.lines else None

    @property
    def toggle_percent(self) -> float | None:
        return round(100.0 * self.toggles_hit / self.toggles, 1) if self.toggles else None


def parse_counts(path: Path) -> Iterable[tuple[dict[str, str], int]]:
    """The points of one coverage.dat file: (keys, count) per ``C '...' count`` line."""
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("C '"):
            continue
        body, _, count = line[3:].rpartition("' ")
        keys = dict(item.split("\x02", 1) for item in body.split("\x01") if "\x02" in item)
        yield keys, int(count)


def merge(paths: Iterable[Path]) -> dict[tuple[str, ...], int]:
    """Counts of every point over all ``paths``: the same point (file, line, column, type, page,
    comment) in several runs adds up."""
    merged: dict[tuple[str, ...], int] = defaultdict(int)
    for path in paths:
        for keys, count in parse_counts(path):
            point = (keys.get("f", ""), keys.get("l", "0"), keys.get("n", "0"), keys.get("t", ""),
                     keys.get("page", ""), keys.get("o", ""), keys.get("S", ""))
            merged[point] += count
    return merged


def _module(page: str) -> str:
    return page.split("/", 1)[1] if "/" in page else page


class _Sources:
    """The Verilog files' lines, read once each (a file gone from the cache reads as empty)."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {}

    def line(self, path: str, number: str) -> str:
        if path not in self._lines:
            try:
                self._lines[path] = Path(path).read_text(errors="replace").splitlines()
            except OSError:
                self._lines[path] = []
        lines = self._lines[path]
        n = int(number)
        return lines[n - 1] if 0 < n <= len(lines) else ""


def backend_guards(merged: dict[tuple[str, ...], int]) -> set[tuple[str, ...]]:
    """The branch points of Yosys's never-true ``$auto$verilog_backend`` guards (BACKEND_GUARD)."""
    sources = _Sources()
    return {point for point in merged
            if point[3] == "branch" and BACKEND_GUARD in sources.line(point[0], point[1])}


def per_module(merged: dict[tuple[str, ...], int]) -> dict[str, ModuleCoverage]:
    """Coverage per Verilog module, without the backend's guards (:func:`backend_guards`).  A
    module that two different files define (two designs that elaborate a block differently) is
    one entry per file, named ``module (file)``."""
    files_of: dict[str, set[str]] = defaultdict(set)
    for (f, _l, _n, _t, page, _o, _s) in merged:
        files_of[_module(page)].add(f)
    guards = backend_guards(merged)
    out: dict[str, ModuleCoverage] = defaultdict(ModuleCoverage)
    for point, count in merged.items():
        f, _line, _n, kind, page, _o, _s = point
        name = _module(page)
        if len(files_of[name]) > 1:
            name = f"{name} ({Path(f).parent.name}/{Path(f).name})"
        m = out[name]
        if point in guards:
            continue
        if kind in LINE_TYPES:
            m.lines += 1
            m.lines_hit += count > 0
        elif kind == "toggle":
            m.toggles += 1
            m.toggles_hit += count > 0
    return dict(sorted(out.items()))


def _lines_of(line: str, span: str) -> list[int]:
    """The source lines a point covers: its ``S`` ranges ("102-103,105"), else its own line."""
    if not span:
        return [int(line)]
    out: list[int] = []
    for part in span.split(","):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


def write_lcov(merged: dict[tuple[str, ...], int], path: Path) -> None:
    """An lcov tracefile of the line points: a source line's count is the largest of the points on it."""
    per_file: dict[str, dict[int, int]] = defaultdict(dict)
    guards = backend_guards(merged)
    for point, count in merged.items():
        f, line, _n, kind, _page, _o, span = point
        if kind not in LINE_TYPES or point in guards:
            continue
        for n in _lines_of(line, span):
            per_file[f][n] = max(per_file[f].get(n, 0), count)
    with open(path, "w") as out:
        for f in sorted(per_file):
            out.write("TN:\nSF:" + f + "\n")
            for n, count in sorted(per_file[f].items()):
                out.write(f"DA:{n},{count}\n")
            hit = sum(1 for c in per_file[f].values() if c)
            out.write(f"LH:{hit}\nLF:{len(per_file[f])}\nend_of_record\n")


def summary_lines(modules: dict[str, ModuleCoverage]) -> list[str]:
    """One line per module: line and toggle coverage, points hit of points."""
    width = max((len(n) for n in modules), default=10)

    def percent(value: float | None) -> str:
        return "    -  " if value is None else f"{value:5.1f} %"

    return [f"{name:<{width}}  line {percent(m.line_percent)} ({m.lines_hit}/{m.lines})  "
            f"toggle {percent(m.toggle_percent)} ({m.toggles_hit}/{m.toggles})" for name, m in modules.items()]


def report(counts: Path = COUNTS, out: Path = OUT) -> dict:
    """Merge the counts in ``counts``, print a line per module, write the lcov file and the HTML."""
    files = sorted(counts.glob("*.dat"))
    if not files:
        raise SystemExit(f"coverage: no counts in {counts}; did the tests run?")
    merged = merge(files)
    modules = per_module(merged)
    for line in summary_lines(modules):
        print(line, flush=True)
    info = out / "lines.info"
    write_lcov(merged, info)
    html = None
    if shutil.which("genhtml"):
        shutil.rmtree(HTML_DIR, ignore_errors=True)
        done = subprocess.run(["genhtml", "--quiet", "--output-directory", str(HTML_DIR), str(info)],
                              capture_output=True, text=True)
        if done.returncode == 0:
            html = str(HTML_DIR / "index.html")
            print(f"coverage: HTML report {html}", flush=True)
        else:
            print(f"coverage: genhtml failed: {done.stderr.strip()[-500:]}", file=sys.stderr)
    else:
        print("coverage: no genhtml (Debian's lcov) for the HTML report; make setup installs it", file=sys.stderr)
    return {
        "unit": "percent of Verilator's coverage points hit (line: line and branch points, without the "
                "Verilog backend's never-true guards; toggle: each bit both ways)",
        "tests": TESTS,
        "runs": len(files),
        "html": html,
        "lcov": str(info),
        "modules": {name: {"line_percent": m.line_percent, "toggle_percent": m.toggle_percent,
                           "line_points": m.lines, "line_points_hit": m.lines_hit,
                           "toggle_points": m.toggles, "toggle_points_hit": m.toggles_hit}
                    for name, m in modules.items()},
    }


def run() -> dict:
    """Run TESTS with coverage (fresh counts), then report."""
    shutil.rmtree(COUNTS, ignore_errors=True)
    COUNTS.mkdir(parents=True)
    env = dict(os.environ, SPLITNIC_COVERAGE=str(COUNTS))
    env.pop("WAVES", None)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not icarus",
                           *TESTS], cwd=REPO, env=env, timeout=TIMEOUT)
    seconds = round(time.monotonic() - start, 1)
    if done.returncode != 0:
        raise SystemExit(f"coverage: the tests failed (exit {done.returncode}); no report")
    figures = report()
    figures["tests_seconds"] = seconds
    return figures


if __name__ == "__main__":
    run()
