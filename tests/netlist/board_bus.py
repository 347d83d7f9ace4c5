"""The NIC as the board's bus sees it while ``sys`` is in reset: its DMA master ignored.

From a random initial state the DMA master's outputs are random until the first clock edge
of the reset, and the testbench's host memory (splitnic_sim.hostmem.WishboneDmaTarget)
answers whatever it sees, in reset or not: it counted a read of address 4 at the first edge
as an access outside host memory.  On the board the interconnect is reset by the same
``sys`` reset and ignores the master meanwhile (Wishbone B4 §3.1.1: interfaces respond to
RST_I).  :func:`write_board_bus_wrapper` wraps a NIC module (RTL or netlist) in a module with
the same ports that holds CYC and STB of the DMA master low while ``rst`` is high.
"""

from __future__ import annotations

import re
from pathlib import Path

_PORT = re.compile(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(\[[^\]]+\]\s*)?(\S+?)\s*;", re.M)
#: The DMA master's outputs that start a bus cycle.
_GATED = ("dma__cyc", "dma__stb")


def write_board_bus_wrapper(verilog: Path, top: str, name: str, out_dir: Path, *, public_ports: bool) -> Path:
    """Write module ``name`` around ``top`` of ``verilog`` (yosys's non-ANSI port list); its path.

    ``public_ports`` marks the wrapper's ports for cocotb (for a build without --public-flat-rw).
    """
    text = Path(verilog).read_text()
    start = re.search(rf"^module {re.escape(top)}\(", text, re.M)
    if start is None:
        raise ValueError(f"{verilog} has no module {top}")
    body = text[start.end():text.index("endmodule", start.end())]
    ports = [(d, (w or "").strip(), n) for d, w, n in _PORT.findall(body)]
    names = {n for _, _, n in ports}
    if not set(_GATED) | {"rst"} <= names:
        raise ValueError(f"{top} has no {', '.join(sorted(set(_GATED) | {'rst'} - names))} port")
    mark = " /*verilator public_flat_rw*/" if public_ports else ""
    lines = [f"// {name}: {top} with its DMA master ignored while rst is high (tests/netlist/board_bus.py).",
             f"module {name}({', '.join(n for _, _, n in ports)});"]
    lines += [f"  {d} {w + ' ' if w else ''}{n}{mark};" for d, w, n in ports]
    lines += [f"  wire {n}_core;" for n in _GATED]
    conns = ", ".join(f".{n}({n}_core)" if n in _GATED else f".{n}({n})" for _, _, n in ports)
    lines += [f"  {top} core({conns});"]
    lines += [f"  assign {n} = {n}_core & ~rst;" for n in _GATED]
    lines += ["endmodule", ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.v"
    new = "\n".join(lines)
    if not path.exists() or path.read_text() != new:
        path.write_text(new)
    return path
