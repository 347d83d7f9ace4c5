"""The spec hashes cover what a peer depends on, not the prose; the tunnel's hash is not the NIC's.

Ref: spec/splitnic_spec/model.py (abi_text, spec_fingerprint); ID_SPEC_HASH
(the driver refuses a NIC whose hash differs) and Info.spec_hash (the driver
refuses a splitnic.ko whose hash differs) in docs/registers.md.

Each test edits a copy of the spec, runs ``python -m splitnic_spec.generate``
on it as ``make generate`` does, and reads the hashes from the generated
headers: a reworded description must leave both hashes alone (a typo fix
must not make every bitstream incompatible), a NIC register change must not
move the tunnel's hash (the driver must not refuse a module that touches no
NIC register), and a tunnel change must not move the NIC's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from splitnic_spec.generate import outputs

from ..conftest import REPO_ROOT

NIC_HEADERS = ("hostdrv/kmod/splitnic_spec.h", "firmware/include/splitnic_spec.h")
TUNNEL_HEADER = "hostdrv/kmod/splitnic_tunnel.h"


@pytest.fixture
def spec_copy(tmp_path: Path) -> Path:
    """A repository root holding a copy of the spec and of its generated files."""
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "spec" / "splitnic_spec", root / "spec" / "splitnic_spec",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for out in outputs():
        (root / out.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / out.path, root / out.path)
    return root


def _generate(root: Path) -> tuple[int, int]:
    """Run the generator on ``root``; the (NIC, tunnel) hashes its headers carry."""
    env = dict(os.environ, PYTHONPATH=str(root / "spec"))
    result = subprocess.run([sys.executable, "-m", "splitnic_spec.generate", "--root", str(root)],
                            env=env, capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stderr
    nic = {_define(root / path, "SNIC_SPEC_HASH") for path in NIC_HEADERS}
    assert len(nic) == 1, f"the NIC headers disagree: {nic}"
    return nic.pop(), _define(root / TUNNEL_HEADER, "SNIC_TUN_SPEC_HASH")


def _define(header: Path, name: str) -> int:
    match = re.search(rf"^#define {name} (0x[0-9a-f]+)$", header.read_text(), re.M)
    assert match, f"{header} has no {name}"
    return int(match.group(1), 16)


def _edit(root: Path, module: str, pattern: str, replacement: str) -> None:
    """Replace the one match of ``pattern`` in ``spec/splitnic_spec/<module>``."""
    path = root / "spec" / "splitnic_spec" / module
    text, n = re.subn(pattern, replacement, path.read_text())
    assert n == 1, f"{module}: {pattern!r} matched {n} times; the spec moved, update the test"
    path.write_text(text)


def test_the_committed_headers_carry_the_hashes_of_this_spec(spec_copy: Path) -> None:
    import splitnic_spec
    from splitnic_spec import tunnel
    assert _generate(spec_copy) == (splitnic_spec.SPEC_HASH, tunnel.SPEC_HASH)


def test_rewording_descriptions_changes_no_hash(spec_copy: Path) -> None:
    before = _generate(spec_copy)
    # A register's, a field's, a constant's, an array's and a struct member's description, in both specs.
    _edit(spec_copy, "nic.py", r'"Free for software; used by bus self-tests\."', '"Free for software (bus self-tests use it)."')
    _edit(spec_copy, "nic.py", r'"Accept every destination address\."', '"Accept frames to any destination."')
    _edit(spec_copy, "nic.py", r'"Bytes of Ethernet FCS\."', '"Bytes of the Ethernet FCS."')
    _edit(spec_copy, "nic.py", r'"RX queues: the driver posts', '"RX queues. The driver posts')
    _edit(spec_copy, "nic.py", r'"Copied from the descriptor\."', '"The descriptor\'s cookie."')
    _edit(spec_copy, "tunnel.py", r'"Reserved, 0\."', '"Reserved; reads 0."')
    _edit(spec_copy, "tunnel.py", r'"Smallest frame slot\."', '"The smallest frame slot."')
    after = _generate(spec_copy)
    assert after == before
    text = (spec_copy / "docs" / "registers.md").read_text()
    assert "bus self-tests use it" in text and "Reserved; reads 0." in text, "the new wording must still be generated"


@pytest.mark.parametrize("pattern, replacement", [
    (r'Field\("LEN", 0, 14,', 'Field("LEN", 0, 15,'),                     # MAX_FRAME.LEN: a width
    (r'Register\("SCRATCH", 0x014,', 'Register("SCRATCH", 0x020,'),        # an offset
    (r'Field\("BROADCAST", 6, 1, "Accept the broadcast address\.", 1\)',   # a reset value
     'Field("BROADCAST", 6, 1, "Accept the broadcast address.", 0)'),
    (r'Register\("SCRATCH", 0x014, RW,', 'Register("SCRATCH", 0x014, RO,'),  # an access
])
def test_a_nic_change_moves_the_nic_hash_not_the_tunnel_hash(spec_copy: Path, pattern: str,
                                                             replacement: str) -> None:
    nic, tun = _generate(spec_copy)
    _edit(spec_copy, "nic.py", pattern, replacement)
    nic_after, tun_after = _generate(spec_copy)
    assert nic_after != nic
    assert tun_after == tun


def test_a_tunnel_struct_change_moves_the_tunnel_hash_not_the_nic_hash(spec_copy: Path) -> None:
    nic, tun = _generate(spec_copy)
    _edit(spec_copy, "tunnel.py", r'StructField\("features", 32,', 'StructField("features", 16,')
    nic_after, tun_after = _generate(spec_copy)
    assert tun_after != tun
    assert nic_after == nic
