"""Turn Amaranth components into Verilog files for the simulators and LiteX."""

from __future__ import annotations

import hashlib
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

__all__ = ["write_verilog"]


def write_verilog(component: wiring.Component, name: str, out_dir: Path) -> Path:
    """Write ``component`` as ``out_dir/name.v`` and return the path.

    The file is rewritten only when its text changes, so simulators that
    compare time stamps do not rebuild needlessly.
    """
    text = verilog.convert(component, name=name, emit_src=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.v"
    if not path.exists() or hashlib.sha256(path.read_bytes()).digest() != hashlib.sha256(text.encode()).digest():
        path.write_text(text)
    return path
