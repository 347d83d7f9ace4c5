"""Loading the board's bitstream with openFPGALoader (SRAM, or SPI flash); ``splitnic flash`` runs it.

Ref: docs/hardware.md, "Flash".  openFPGALoader names the Colorlight i5
``colorlight-i5`` and the i9 ``colorlight-i9`` (:data:`splitnic_spec.board.BOARDS`);
their extension board carries a CMSIS-DAP probe.

Before openFPGALoader runs, the bitstream is checked against the board: the
FPGA's IDCODE that ecppack wrote into it (an i5 bitstream does not configure
an i9's FPGA, nor the reverse), and for ``--flash`` its size against the
board's SPI flash (2 MiB on the i5, 8 MiB on the i9; either holds its
bitstream at offset 0, where the FPGA boots from).

The cable is found with ``openFPGALoader --scan-usb`` (probes by USB id), so
an FTDI or DirtyJTAG adapter wired to the module's JTAG pads works as well.
openFPGALoader exits 0 even when it found no FPGA, so its output is read to
tell success from failure.
"""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from splitnic_spec import board

from .errors import SplitnicError

__all__ = ["Cable", "detect_cables", "choose_cable", "flash_command", "load_bitstream", "default_bitstream",
           "bitstream_idcode", "check_bitstream", "BOARD", "KNOWN_PROBES"]

log = logging.getLogger(__name__)

#: openFPGALoader's name of the default board.
BOARD = board.BOARDS[board.DEFAULT_BOARD].loader_name
#: USB ids of the probes people use with this board -> openFPGALoader cable name.
KNOWN_PROBES = {
    (0x0D28, 0x0204): "cmsisdap",    # DAPLink of the i5 extension board
    (0x0403, 0x6010): "ft2232",
    (0x0403, 0x6014): "ft232",
    (0x0403, 0x6001): "ft232RL",
    (0x1209, 0xC0CA): "dirtyJtag",
}
#: What a user has to plug in, named in every "no cable" error.
PLUG_IN = ("plug the {title} into its extension board and connect the extension board's USB port "
           "(its CMSIS-DAP probe) to this machine")
#: Where ecppack's bitstream starts (Lattice TN1260), and the VERIFY_ID command that follows it with
#: the IDCODE of the FPGA the bitstream is for.
_PREAMBLE = bytes.fromhex("ffffbdb3")
_VERIFY_ID = bytes.fromhex("e2000000")
_PROBE_LINE = re.compile(r"^\s*(?P<bus>\d+)\s+(?P<dev>\d+)\s+0x(?P<vid>[0-9a-fA-F]{4}):0x(?P<pid>[0-9a-fA-F]{4})"
                         r"\s+(?P<type>\S+)(?P<rest>.*)$")


class Cable:
    """A JTAG probe seen on USB."""

    def __init__(self, name: str, vid: int, pid: int, description: str) -> None:
        self.name = name
        self.vid = vid
        self.pid = pid
        self.description = description

    def __repr__(self) -> str:
        return f"Cable({self.name!r}, {self.vid:04x}:{self.pid:04x}, {self.description!r})"


def _board(name: str) -> board.Board:
    if name not in board.BOARDS:
        raise SplitnicError(f"no board {name!r}; boards: {', '.join(board.BOARDS)}")
    return board.BOARDS[name]


def _plug_in(name: str) -> str:
    return PLUG_IN.format(title=_board(name).title)


def default_bitstream(checkout: Path | None = None, board_name: str = board.DEFAULT_BOARD) -> Path:
    """Where ``make bitstream BOARD=board_name`` writes the bitstream in ``checkout`` (default: here)."""
    return (checkout or Path.cwd()) / board.bitstream_path(board_name)


def bitstream_idcode(data: bytes) -> int | None:
    """The IDCODE of the FPGA a bitstream is for (its VERIFY_ID command), or None if it has none."""
    start = data.find(_PREAMBLE, 0, 4096)
    if start < 0:
        return None
    at = data.find(_VERIFY_ID, start, start + 64)
    if at < 0 or len(data) < at + 8:
        return None
    return int.from_bytes(data[at + 4:at + 8], "big")


def check_bitstream(bitstream: Path, board_name: str, to_flash: bool) -> None:
    """Refuse a bitstream for another FPGA than ``board_name``'s, or (``to_flash``) larger than its flash."""
    target = _board(board_name)
    data = bitstream.read_bytes()
    idcode = bitstream_idcode(data)
    if idcode is not None and idcode != target.idcode:
        other = next((b for b in board.BOARDS.values() if b.idcode == idcode), None)
        built_for = f"the {other.title}'s {other.fpga}" if other else f"an FPGA with IDCODE {idcode:#010x}"
        hint = f"; load it with --board {other.name}" if other else ""
        raise SplitnicError(f"{bitstream} is for {built_for}, not the {target.title}'s {target.fpga}{hint}")
    if to_flash and len(data) > target.flash_bytes:
        raise SplitnicError(f"{bitstream} is {len(data)} bytes; the {target.title}'s SPI flash holds "
                            f"{target.flash_bytes}")


def _loader() -> str:
    path = shutil.which("openFPGALoader")
    if path is None:
        raise SplitnicError("openFPGALoader is not installed; run `make setup` (it installs the Debian "
                            "package openfpgaloader)")
    return path


def parse_scan(output: str) -> list[Cable]:
    """Probes listed by ``openFPGALoader --scan-usb`` that this board can be loaded through."""
    cables = []
    for line in output.splitlines():
        m = _PROBE_LINE.match(line)
        if not m:
            continue
        vid, pid = int(m["vid"], 16), int(m["pid"], 16)
        name = KNOWN_PROBES.get((vid, pid))
        if name is None:
            log.info("ignoring USB probe %04x:%04x (%s): not a JTAG cable known to work with the Colorlight boards",
                     vid, pid, m["type"])
            continue
        cables.append(Cable(name, vid, pid, (m["type"] + m["rest"]).strip()))
    return cables


def detect_cables() -> list[Cable]:
    """JTAG probes plugged into this machine (``openFPGALoader --scan-usb``)."""
    try:
        out = subprocess.run([_loader(), "--scan-usb"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise SplitnicError("openFPGALoader --scan-usb hung for 30 s; unplug and replug the probe") from None
    return parse_scan(out.stdout + out.stderr)


def flash_command(bitstream: Path, cable: str, to_flash: bool, board_name: str = board.DEFAULT_BOARD) -> list[str]:
    """The openFPGALoader command line that loads ``bitstream`` into ``board_name`` through ``cable``."""
    cmd = [_loader(), "--board", _board(board_name).loader_name, "--cable", cable]
    cmd.append("--write-flash" if to_flash else "--write-sram")
    return cmd + [str(bitstream)]


def _failure(output: str, board_name: str = board.DEFAULT_BOARD) -> str | None:
    """What went wrong, from openFPGALoader's output (its exit status is 0 on many failures)."""
    title = _board(board_name).title
    for pattern, meaning in (
            (r"JTAG init failed|No device found|unable to open|cannot open|fails to open",
             f"the probe did not open or found no FPGA: {_plug_in(board_name)}, and check that the module is seated"),
            (r"IDCODE.*0x(00000000|ffffffff)",
             f"the probe answers but sees no FPGA on the JTAG chain: is the {title} module seated and powered?"),
            (r"[Ee]rror|[Ff]ail", None)):
        m = re.search(pattern, output)
        if m:
            line = next((l for l in output.splitlines() if m.group(0) in l), m.group(0)).strip()
            return meaning or f"openFPGALoader reported: {line}"
    return None


def choose_cable(dry_run: bool = False, board_name: str = board.DEFAULT_BOARD) -> str:
    """The one JTAG cable plugged in (the extension board's probe's name when ``dry_run`` finds none)."""
    cables = detect_cables()
    if not cables and not dry_run:
        raise SplitnicError(f"no JTAG cable found: {_plug_in(board_name)}")
    if len(cables) > 1 and not dry_run:
        raise SplitnicError(f"{len(cables)} JTAG cables found ({', '.join(c.name for c in cables)}); "
                            "unplug all but the board's, or pick one with --cable")
    if not cables:
        cable = KNOWN_PROBES[(0x0D28, 0x0204)]
        log.warning("no JTAG cable plugged in; showing the command for the extension board's probe (%s)", cable)
        return cable
    return cables[0].name


def load_bitstream(bitstream: Path, cable: str, to_flash: bool, board_name: str = board.DEFAULT_BOARD) -> None:
    """Load ``bitstream`` into ``board_name`` through ``cable``; raises with what to do when it did not work."""
    _board(board_name)
    if not bitstream.is_file():
        raise SplitnicError(f"no bitstream at {bitstream}; build it with `make bitstream BOARD={board_name}` in a "
                            "splitnic checkout and run this there, or name one with --bitstream")
    check_bitstream(bitstream, board_name, to_flash)
    cmd = flash_command(bitstream, cable, to_flash, board_name)
    log.info("%s", shlex.join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    log.debug("openFPGALoader said:\n%s", output)
    problem = _failure(output, board_name)
    if proc.returncode != 0 or problem:
        raise SplitnicError(problem or f"openFPGALoader failed (exit {proc.returncode}): "
                                       f"{output.strip().splitlines()[-1] if output.strip() else 'no output'}")
