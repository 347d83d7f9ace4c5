"""Writing and reading classic pcap files (what ``splitnic capture`` writes, ``splitnic send`` reads).

Ref: https://www.ietf.org/archive/id/draft-gharris-opsawg-pcap-01.html (file
header, record header; LINKTYPE_ETHERNET = 1).
"""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import SplitnicError

__all__ = ["PcapWriter", "read_pcap"]

_MAGIC_US = 0xA1B2C3D4
_MAGIC_NS = 0xA1B23C4D
_LINKTYPE_ETHERNET = 1
_FILE = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")


class PcapWriter:
    """Ethernet frames to a pcap file, microsecond timestamps."""

    def __init__(self, path: Path | str, snaplen: int = 65535) -> None:
        try:
            self._f: BinaryIO = open(path, "wb")
        except OSError as err:
            raise SplitnicError(f"cannot write {path}: {err.strerror}") from None
        self.snaplen = snaplen
        self.count = 0
        self._f.write(_FILE.pack(_MAGIC_US, 2, 4, 0, 0, snaplen, _LINKTYPE_ETHERNET))

    def write(self, frame: bytes | memoryview, when: float | None = None) -> None:
        """Append one frame (truncated to snaplen), stamped ``when`` (default: now)."""
        when = time.time() if when is None else when
        sec = int(when)
        kept = frame[:self.snaplen]
        self._f.write(_RECORD.pack(sec, int((when - sec) * 1e6), len(kept), len(frame)))
        self._f.write(kept)
        self.count += 1

    def close(self) -> None:
        """Flush and close the file."""
        self._f.close()

    def __enter__(self) -> "PcapWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_pcap(path: Path | str) -> Iterator[bytes]:
    """The frames of an Ethernet pcap file (either byte order, us or ns timestamps)."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise SplitnicError(f"cannot read {path}: {err.strerror}") from None
    if len(data) < _FILE.size:
        raise SplitnicError(f"{path}: not a pcap file (too short)")
    for order in "<>":
        magic, _, _, _, _, _, linktype = struct.unpack(order + _FILE.format[1:], data[:_FILE.size])
        if magic in (_MAGIC_US, _MAGIC_NS):
            break
    else:
        raise SplitnicError(f"{path}: not a classic pcap file (pcapng? convert with `editcap -F pcap`)")
    if linktype != _LINKTYPE_ETHERNET:
        raise SplitnicError(f"{path}: link type {linktype}, expected 1 (Ethernet)")
    record = struct.Struct(order + _RECORD.format[1:])
    off = _FILE.size
    while off + record.size <= len(data):
        _, _, incl, _ = record.unpack_from(data, off)
        off += record.size
        yield data[off:off + incl]
        off += incl
