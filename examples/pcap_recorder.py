"""A capture-to-pcap recorder on the fast path: every frame its rule steers here, to a pcap file.

Ref: docs/apps.md; the pcap file format (https://wiki.wireshark.org/Development/LibpcapFileFormat);
splitnic.attach.

Each batch is written with one ``write``: its records (header and frame,
straight from the NIC's buffer) are joined first, so the per-frame cost is a
16-byte header and a slice.  Every frame of a batch carries the time the
batch was taken.  The file is Wireshark's and tcpdump's classic pcap
(microseconds, Ethernet).

    python examples/pcap_recorder.py --interface snic0 --rule 'udp dport 4789' --out /tmp/vxlan.pcap
"""

from __future__ import annotations

import argparse
import signal
import struct
import sys
import time

import splitnic
from splitnic.errors import SplitnicError

_FILE = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_MAGIC_US, _LINKTYPE_ETHERNET = 0xA1B2C3D4, 1


class PcapRecorder:
    """``handler(batch, app)``: append the batch's frames to the open pcap file."""

    def __init__(self, path: str, snaplen: int = 65535) -> None:
        self.file = open(path, "wb")
        self.snaplen = snaplen
        self.frames = 0
        self.file.write(_FILE.pack(_MAGIC_US, 2, 4, 0, 0, snaplen, _LINKTYPE_ETHERNET))

    def __call__(self, batch, app) -> None:
        now = time.time()
        sec, usec = int(now), int((now - int(now)) * 1e6)
        parts = []
        for frame in batch:
            kept = frame[:self.snaplen]
            parts.append(_RECORD.pack(sec, usec, len(kept), len(frame)))
            parts.append(kept)
        self.file.write(b"".join(parts))    # one copy, from the NIC's buffers into the file's
        self.frames += len(batch)

    def close(self) -> None:
        self.file.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interface", default="snic0", help="the interface splitnic up serves (default: snic0)")
    parser.add_argument("--apps", default=None, help="its application socket (default: /run/splitnic/IF.apps)")
    parser.add_argument("--rule", required=True, help="what to record, e.g. 'udp dport 4789'")
    parser.add_argument("--out", required=True, help="the pcap file to write")
    parser.add_argument("--name", default="pcap", help="application name (default: %(default)s)")
    args = parser.parse_args(argv)
    stop: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(1))
    try:
        recorder = PcapRecorder(args.out)
    except OSError as err:
        print(f"pcap_recorder: error: cannot write {args.out}: {err.strerror}", file=sys.stderr)
        return 1
    try:
        # A deep ring (1024 entries, 2048 buffers of 1536 bytes: a standard frame each) rides out the
        # moments this process is not scheduled.
        with splitnic.attach(args.rule, name=args.name, interface=args.interface, path=args.apps, burst=256,
                             ring_log2=10, buf_size=1536) as app:
            print(f"pcap_recorder: recording '{args.rule}' from RX queue {app.rx.index} to {args.out} "
                  "(Ctrl-C to stop)", flush=True)
            app.run(recorder, stop=lambda: bool(stop))
    except SplitnicError as err:
        print(f"pcap_recorder: error: {err}", file=sys.stderr)
        return 1
    finally:
        recorder.close()
    print(f"pcap_recorder: {recorder.frames} frames to {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
