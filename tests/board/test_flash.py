"""``splitnic flash``: the exact openFPGALoader command, cable detection, the no-cable error.

openFPGALoader itself runs in these tests (the Debian package); only a
plugged-in board is missing, which is what the error paths are about.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from splitnic_spec.board import BOARDS
from splitnic.errors import SplitnicError
from splitnic.flasher import BOARD, bitstream_idcode, check_bitstream, default_bitstream, detect_cables, parse_scan

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
    from splitnic_gateware.targets.colorlight import BITSTREAM_NAME, DEFAULT_OUT, default_out
    assert default_bitstream(DEFAULT_OUT.parents[1]) == DEFAULT_OUT / "gateware" / f"{BITSTREAM_NAME}.bit"
    i9 = default_out("colorlight_i9")
    assert default_bitstream(i9.parents[1], "colorlight_i9") == i9 / "gateware" / "splitnic_colorlight_i9.bit"


def test_dry_run_for_the_i9_names_its_board_and_bitstream() -> None:
    result = _splitnic("flash", "--dry-run", "--board", "colorlight_i9", "--cable", "cmsisdap")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split()[1:] == ["--board", "colorlight-i9", "--cable", "cmsisdap", "--write-sram",
                                                 str(default_bitstream(board_name="colorlight_i9"))]


def _bitstream_for(path: Path, board: str, size: int = 4096) -> Path:
    """A file laid out as ecppack starts one (comment, preamble, reset CRC, VERIFY_ID with the IDCODE)."""
    head = (b"\xff\x00splitnic test\x00\xff" + bytes.fromhex("ffffbdb3") + bytes.fromhex("3b000000")
            + bytes.fromhex("e2000000") + BOARDS[board].idcode.to_bytes(4, "big"))
    path.write_bytes(head + b"\xff" * (size - len(head)))
    return path


def test_a_bitstream_for_the_other_board_is_refused_before_loading(tmp_path: Path) -> None:
    bit = _bitstream_for(tmp_path / "i5.bit", "colorlight_i5")
    assert bitstream_idcode(bit.read_bytes()) == 0x41111043
    result = _splitnic("flash", "--board", "colorlight_i9", "--cable", "cmsisdap", "--bitstream", str(bit))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Colorlight i5's LFE5U-25F" in lines[0] and "--board colorlight_i5" in lines[0], lines


def test_a_bitstream_larger_than_the_flash_is_refused(tmp_path: Path) -> None:
    # 3 MiB: more than the i5's 2 MiB flash holds, well within the i9's 8 MiB.
    big = 3 * 1024 * 1024
    with pytest.raises(SplitnicError, match="SPI flash holds 2097152"):
        check_bitstream(_bitstream_for(tmp_path / "i5.bit", "colorlight_i5", big), "colorlight_i5", to_flash=True)
    check_bitstream(tmp_path / "i5.bit", "colorlight_i5", to_flash=False)       # SRAM: no flash to fill
    check_bitstream(_bitstream_for(tmp_path / "i9.bit", "colorlight_i9", big), "colorlight_i9", to_flash=True)


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
    result = _splitnic("flash", "--board", "colorlight_i9", "--cable", "cmsisdap",
                       "--bitstream", str(tmp_path / "none.bit"))
    assert result.returncode == 1 and "make bitstream BOARD=colorlight_i9" in result.stderr
