"""The rules socket of a running ``splitnic up`` never stalls the data path.

Ref: hostdrv/splitnic/rule_control.py (RuleServer: non-blocking clients in an epoll set of its own).
"""

from __future__ import annotations

import json
import select
import socket
from pathlib import Path

import pytest

import splitnic
from splitnic.fastpath import FastPath
from splitnic.rule_control import RuleServer
from splitnic_sim.softnic import SoftNic


@pytest.fixture
def server(tmp_path: Path):
    with SoftNic() as model:
        nic = splitnic.open(model.link)
        nic.reset()
        srv = RuleServer(FastPath(nic, ["udp dport 9000 -> echo"]), tmp_path / "rules.sock")
        yield srv
        srv.close()
        nic.close()


def _connect(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(path))
    s.settimeout(10)
    return s


def test_a_silent_client_does_not_hold_up_the_next_request(server: RuleServer) -> None:
    silent = _connect(server.path)           # connects and sends nothing
    assert select.select([server], [], [], 5)[0], "the server's descriptor did not become readable"
    assert server.poll() == 0                # returns at once: nothing complete yet
    talker = _connect(server.path)
    talker.sendall(b'{"op": "list"}\n')
    served = 0
    for _ in range(20):
        if select.select([server], [], [], 5)[0]:
            served += server.poll()
        if served:
            break
    assert served == 1
    reply = json.loads(talker.recv(4096))
    assert reply["ok"] and reply["rules"][0][1] == "udp dport 9000 -> echo"
    silent.setblocking(False)
    with pytest.raises(BlockingIOError):
        silent.recv(16)                       # still waiting, unanswered, not dropped yet
    silent.close()
    talker.close()


def test_a_request_in_pieces_is_answered_once_complete(server: RuleServer) -> None:
    client = _connect(server.path)
    client.sendall(b'{"op": ')
    select.select([server], [], [], 5)
    assert server.poll() == 0
    client.sendall(b'"remove", "index": 7}\n')
    served = 0
    for _ in range(20):
        if select.select([server], [], [], 5)[0]:
            served += server.poll()
        if served:
            break
    reply = json.loads(client.recv(4096))
    assert served == 1 and not reply["ok"] and "7" in reply["error"]
    client.close()
