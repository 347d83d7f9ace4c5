"""``splitnic flash``: the exact openFPGALoader command, cable detection, the no-cable error.

openFPGALoader itself runs in these tests (the Debian package); only a
plugged-in board is missing, which is what the error paths are about.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from splitnic.flasher import BOARD, default_bitstream, detect_cables, parse_scan

SPLITNIC = Path(sys.executable).parent / "splitnic"


def _splitnic(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SPLITNIC, *args], capture_output=True, text=True, timeout=120)


def test_dry_run_prints_the_sram_command() -> None:
    result = _splitnic("flash", "--dry-run", "--cable", "cmsisdap")
    assert result.returncode == 0, result.stderr
    cmd = result.stdout.strip().split()
    assert cmd[0].endswith("openFPGALoader")
    assert cmd[1:] == ["--board", BOARD, "--cable", "cmsisdap", "--write-sram", str(default_bitstream())]


def test_dry_run_with_flash_writes_the_spi_flash(tmp_path: Path) -> None:
    bit = tmp_path / "x.bit"
    result = _splitnic("flash", "--dry-run", "--flash", "--cable", "ft2232", "--bitstream", str(bit))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split()[1:] == ["--board", BOARD, "--cable", "ft2232", "--write-flash", str(bit)]


def test_default_bitstream_is_where_make_bitstream_writes_it() -> None:
    from splitnic_gateware.targets.colorlight_i5 import BITSTREAM_NAME, DEFAULT_OUT
    assert default_bitstream(DEFAULT_OUT.parents[1]) == DEFAULT_OUT / "gateware" / f"{BITSTREAM_NAME}.bit"


def test_scan_output_is_parsed_to_known_cables() -> None:
    # The table openFPGALoader --scan-usb prints (header, then one probe per line).
    text = ("Bus device vid:pid       probe type      manufacturer serial               product\n"
            "001 004    0x0d28:0x0204 cmsisDAP        ARM          0700000100          DAPLink CMSIS-DAP\n"
            "001 005    0x0403:0x6010 FTDI2232        FTDI         FT5ABC               Dual RS232-HS\n"
            "002 001    0x1234:0x5678 unknown         Acme         1                    Gadget\n")
    cables = parse_scan(text)
    assert [(c.name, c.vid, c.pid) for c in cables] == [("cmsisdap", 0x0D28, 0x0204), ("ft2232", 0x0403, 0x6010)]
    assert parse_scan("Found 0 USB device\nBus device vid:pid       probe type\n") == []


def test_without_a_cable_flash_says_what_to_plug_in() -> None:
    if detect_cables():
        pytest.skip("a JTAG cable is plugged in: the no-cable path cannot be shown here")
    result = _splitnic("flash")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("splitnic: error: no JTAG cable found: plug the Colorlight i5")


def test_with_a_cable_named_but_no_board_flash_fails_in_one_line(tmp_path: Path) -> None:
    if detect_cables():
        pytest.skip("a JTAG cable is plugged in: openFPGALoader would really load this file")
    bit = tmp_path / "empty.bit"
    bit.write_bytes(b"\xff" * 64)
    result = _splitnic("flash", "--cable", "cmsisdap", "--bitstream", str(bit))
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "found no FPGA" in lines[0] and "plug the Colorlight i5" in lines[0], result.stderr


def test_missing_bitstream_names_the_make_target(tmp_path: Path) -> None:
    result = _splitnic("flash", "--cable", "cmsisdap", "--bitstream", str(tmp_path / "none.bit"))
    assert result.returncode == 1
    assert "make bitstream BOARD=colorlight_i5" in result.stderr and len(result.stderr.strip().splitlines()) == 1
