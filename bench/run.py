"""Run the benchmarks: ``make bench`` (all) or ``make bench BENCH=name``.

Each ``bench/bench_<name>.py`` defines ``run() -> dict``: the figures it
measured, JSON-serialisable, each with its unit in the key or a nested
``unit``.  This runner prints them and writes ``bench/<name>.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _benches() -> dict[str, Path]:
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def main(argv: list[str] | None = None) -> int:
    benches = _benches()
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(benches)})")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in benches]
    if unknown:
        print(f"bench: no benchmark {', '.join(unknown)}; have {', '.join(benches)}", file=sys.stderr)
        return 2
    for name in args.names or benches:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", benches[name])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"== {name}", flush=True)
        start = time.monotonic()
        figures = module.run()
        figures["_bench_seconds"] = round(time.monotonic() - start, 1)
        print(json.dumps(figures, indent=2))
        (HERE / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
