"""A UDP Etherbone responder built on LiteX's own codec, with a word memory behind it.

Ref: litex/tools/remote/etherbone.py (LiteX's encoder/decoder of the packet
and record formats).  Decoding with LiteX's code checks the driver's encoder
against an independent implementation; the simulated SoC (test_sim_soc.py)
checks the whole path against the real gateware.

Like the SoC, the model refuses records longer than MAX_WORDS (the real core
stalls on them) and can be told to drop datagrams, to exercise the retries.
"""

from __future__ import annotations

import socket
import struct
import threading

from litex.tools.remote.etherbone import EtherbonePacket, EtherboneRecord, EtherboneWrites

from splitnic_spec.board import MAX_BURST_WORDS


#: A loopback address of its own, so that client and model can both own the port number.
ADDRESS = "127.0.0.2"


class EtherboneModel:
    """Serve ``memory`` (byte address -> 32-bit word) on a UDP port of :data:`ADDRESS`.

    Like LiteX's core it answers to the port it listens on, not to the
    request's source port; the client (on 127.0.0.1) binds the same number.
    """

    def __init__(self) -> None:
        self.memory: dict[int, int] = {}
        self.records: list[tuple[int, int]] = []   # (wcount, rcount) of every record seen
        self.oversized = 0
        self.drop_next = 0                         # datagrams to ignore, to provoke retries
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((ADDRESS, 0))
        self.port = self._sock.getsockname()[1]
        self._sock.settimeout(0.05)                # so that the thread notices a stop
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "EtherboneModel":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join(5)
        self._sock.close()

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
