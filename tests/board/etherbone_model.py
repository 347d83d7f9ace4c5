"""A UDP Etherbone responder built on LiteX's own codec, with a word memory behind it.

Ref: litex/tools/remote/etherbone.py (LiteX's encoder/decoder of the packet
and record formats).  Decoding with LiteX's code checks the driver's encoder
against an independent implementation; the simulated SoC (test_sim_soc.py)
checks the whole path against the real gateware.

Like the SoC, the model refuses records longer than MAX_WORDS (the real core
stalls on them) and can be told to drop datagrams, to exercise the retries.
Given ``buffer_bytes``, it is also a slow board: it handles a datagram every
``handle_delay`` seconds and holds what waits in a receive buffer of that many
bytes of frames (Ethernet, IPv4 and UDP headers included, padded to 60 bytes,
in words), dropping a datagram that does not fit, as the host-link port does.
"""

from __future__ import annotations

import collections
import socket
import struct
import threading
import time

from litex.tools.remote.etherbone import EtherbonePacket, EtherboneRecord, EtherboneWrites

from splitnic_spec.board import MAX_BURST_WORDS


#: A loopback address of its own, so that client and model can both own the port number.
ADDRESS = "127.0.0.2"


class EtherboneModel:
    """Serve ``memory`` (byte address -> 32-bit word) on a UDP port of :data:`ADDRESS`.

    Like LiteX's core it answers to the port it listens on, not to the
    request's source port; the client (on 127.0.0.1) binds the same number.
    """

    def __init__(self, buffer_bytes: int | None = None, handle_delay: float = 0.0) -> None:
        self.buffer_bytes, self.handle_delay = buffer_bytes, handle_delay
        self.dropped = 0                           # datagrams the full buffer turned away
        self.most_buffered = 0                     # bytes of frames waiting, at the most
        self._waiting: collections.deque[tuple[bytes, tuple, int]] = collections.deque()
        self._buffered = 0
        self._ready = threading.Condition()
        self.memory: dict[int, int] = {}
        self.records: list[tuple[int, int]] = []   # (wcount, rcount) of every record seen
        self.oversized = 0
        self.drop_next = 0                         # datagrams to ignore, to provoke retries
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((ADDRESS, 0))
        self.port = self._sock.getsockname()[1]
        self._sock.settimeout(0.05)                # so that the thread notices a stop
        self._stop = False
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        if buffer_bytes is not None:
            self._threads.append(threading.Thread(target=self._handle_buffered, daemon=True))

    def __enter__(self) -> "EtherboneModel":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        with self._ready:
            self._ready.notify_all()
        for thread in self._threads:
            thread.join(5)
        self._sock.close()

    @staticmethod
    def frame_bytes(data: bytes) -> int:
        """What the datagram's frame takes in the board's receive buffer."""
        return (max(14 + 20 + 8 + len(data), 60) + 3) // 4 * 4

    def _serve(self) -> None:
        while not self._stop:
            try:
                data, peer = self._sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if self.drop_next:
                self.drop_next -= 1
                continue
            if self.buffer_bytes is None:
                self._handle(data, peer)
                continue
            size = self.frame_bytes(data)
            with self._ready:
                if self._buffered + size > self.buffer_bytes:
                    self.dropped += 1
                    continue
                self._waiting.append((data, peer, size))
                self._buffered += size
                self.most_buffered = max(self.most_buffered, self._buffered)
                self._ready.notify()

    def _handle_buffered(self) -> None:
        while not self._stop:
            with self._ready:
                while not self._waiting and not self._stop:
                    self._ready.wait(0.05)
                if self._stop:
                    return
                data, peer, size = self._waiting[0]
            time.sleep(self.handle_delay)
            self._handle(data, peer)
            with self._ready:
                self._waiting.popleft()
                self._buffered -= size

    def _handle(self, data: bytes, peer: tuple) -> None:
        packet = EtherbonePacket(init=data)
        packet.decode()
        for record in packet.records[:1]:
            self.records.append((record.wcount, record.rcount))
            if record.wcount > MAX_BURST_WORDS or record.rcount > MAX_BURST_WORDS:
                self.oversized += 1     # the real core would hang: answer nothing
                continue
            if record.wcount:
                for i, w in enumerate(record.writes.writes):
                    self.memory[record.writes.base_addr + 4 * i] = w.data
            if record.rcount:
                values = [self.memory.get(r.addr, 0) for r in record.reads.reads]
                answer = EtherbonePacket()
                rec = EtherboneRecord()
                # LiteX's decoder drops the return address: read it from the datagram.
                ret_at = 8 + 4 + (4 + 4 * record.wcount if record.wcount else 0)
                ret_addr = struct.unpack_from(">I", data, ret_at)[0]
                rec.writes = EtherboneWrites(base_addr=ret_addr, datas=values)
                answer.records = [rec]
                answer.encode()
                self._sock.sendto(bytes(answer.bytes), (peer[0], self.port))
