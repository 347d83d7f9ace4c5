"""Opening links: the kinds, and one-line errors that say what to do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from splitnic.errors import SplitnicError
from splitnic.link import open_link
from splitnic_spec import CSR_MAP
from tests.light_install import NOBODY

_SCRATCH = CSR_MAP.register("SCRATCH").offset


@pytest.mark.parametrize("spec, words", [
    ("bogus:/x", ["unknown link kind 'bogus'", "sim:", "mmio:"]),
    ("sim", ["KIND:ARG"]),
    ("mmio:", ["KIND:ARG"]),
])
def test_bad_link_specs_are_refused_with_the_forms_to_use(spec: str, words: list[str]) -> None:
    with pytest.raises(SplitnicError) as err:
        open_link(spec)
    for w in words:
        assert w in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_mmio_file_says_how_to_start_the_peer(tmp_path: Path) -> None:
    with pytest.raises(SplitnicError, match="no such file.*splitnic_sim.softnic"):
        open_link(f"mmio:{tmp_path / 'nothing'}")


def test_too_small_mmio_file_is_refused(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.write_bytes(bytes(100))
    with pytest.raises(SplitnicError, match="100 bytes is too small"):
        open_link(f"mmio:{small}")


def test_unreachable_sim_socket_says_how_to_start_a_simulator(tmp_path: Path) -> None:
    with pytest.raises(SplitnicError, match="no simulator listening.*splitnic sim --socket"):
        open_link(f"sim:{tmp_path / 'nosock'}")


def test_a_socket_that_is_not_a_simulator_is_refused(tmp_path: Path) -> None:
    import socket
    import threading
    path = tmp_path / "liar.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        conn.sendall(b"SSH-2.0-OpenSSH\n")
        conn.close()
    t = threading.Thread(target=serve)
    t.start()
    with pytest.raises(SplitnicError, match="hello is not JSON"):
        open_link(f"sim:{path}")
    t.join()
    srv.close()


def test_mmio_link_maps_registers_and_zero_copy_dma(softnic) -> None:
    link = open_link(softnic.link)
    try:
        assert link.kind == "mmio" and link.zero_copy
        link.bus.write32(_SCRATCH, 0xA5A55A5A)
        assert softnic.read_reg(_SCRATCH) == 0xA5A55A5A
        region = link.dma.alloc(256)
        region.view[:4] = b"\xde\xad\xbe\xef"
        assert bytes(softnic.dma_view(region.device_addr, 4)) == b"\xde\xad\xbe\xef"
    finally:
        link.close()


def test_sim_link_protocol_against_the_model(tmp_path: Path) -> None:
    from splitnic_sim.softnic import SoftNic
    with SoftNic(sim_socket=tmp_path / "s.sock") as model:
        link = open_link(model.link)
        try:
            assert link.kind == "sim" and link.zero_copy
            link.bus.write32(_SCRATCH, 0x12345678)
            assert link.bus.read32(_SCRATCH) == 0x12345678          # posted write ordered before the read
            assert link.bus.read_burst(0, 3)[0] == 0x534E4943    # ID_MAGIC first
            assert len(link.bus.read_burst(0, 300)) == 300       # split into 256 + 44
            assert link.bus.sync() >= 0
            region = link.dma.alloc(64)
            assert region.device_addr >= model.dma_base
            region.view[:3] = b"abc"
            assert bytes(model.dma_view(region.device_addr, 3)) == b"abc"
        finally:
            link.close()
        # One client at a time, and a new one after the first left.
        link = open_link(model.link)
        assert link.bus.read32(_SCRATCH) == 0x12345678
        link.close()


def test_permission_denied_is_one_line(softnic, request: pytest.FixtureRequest) -> None:
    if os.geteuid() != 0:
        os.chmod(softnic.path, 0)
        with pytest.raises(SplitnicError, match="permission denied"):
            open_link(softnic.link)
        return
    # As root file modes do not stop us: check as an unprivileged user in a child.
    import subprocess
    os.chmod(softnic.path, 0o600)
    code = ("import sys\nfrom splitnic.link import open_link\nfrom splitnic.errors import SplitnicError\n"
            f"try:\n    open_link('mmio:{softnic.path}')\nexcept SplitnicError as e:\n    print(e); sys.exit(3)\n")
    # The driver alone, installed where nobody may read it (the checkout may be in a 0700 home).
    python = request.getfixturevalue("light_install").python
    result = subprocess.run([*NOBODY, str(python), "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert "permission denied" in result.stdout and result.stdout.count("\n") == 1
