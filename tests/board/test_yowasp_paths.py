"""The bitstream build reaches sources under the host's /tmp (a checkout cloned there, its venv).

YoWASP's yosys sees a /tmp of its own, so LiteX's script, which names every source by its
absolute path, found nothing when the checkout lived under /tmp; the build rewrites those
paths relative to its directory.  pytest's tmp_path is under /tmp: the case itself.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from splitnic_gateware.targets.colorlight import _paths_yowasp_can_reach, _tool


@pytest.mark.yowasp
def test_yosys_reads_a_script_s_sources_under_the_host_tmp(tmp_path: Path) -> None:
    assert str(tmp_path).startswith("/tmp/"), "the case needs a directory under /tmp"
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "width.vh").write_text("`define WIDTH 4\n")
    src = tmp_path / "inv.v"
    src.write_text('`include "width.vh"\nmodule inv(input [`WIDTH-1:0] a, output [`WIDTH-1:0] b);'
                   " assign b = ~a; endmodule\n")
    gw = tmp_path / "build" / "gateware"
    gw.mkdir(parents=True)
    script = gw / "top.ys"
    script.write_text(f"read_verilog -I{tmp_path / 'inc'} {src}\nhierarchy -top inv\nwrite_json top.json\n")
    _paths_yowasp_can_reach(script)
    assert str(tmp_path) not in script.read_text()
    run = subprocess.run([_tool("yosys"), "-q", "top.ys"], cwd=gw, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert '"inv"' in (gw / "top.json").read_text()
