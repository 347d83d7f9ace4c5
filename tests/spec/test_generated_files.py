"""Generated files are up to date, and the check catches a stale one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from splitnic_spec.generate import outputs, stale

from ..conftest import REPO_ROOT


def test_committed_generated_files_are_current() -> None:
    assert stale(REPO_ROOT) == [], "run 'make generate' and commit the result"


def test_every_generated_file_has_a_do_not_edit_banner() -> None:
    for out in outputs():
        head = (REPO_ROOT / out.path).read_text()[:400]
        assert "GENERATED FILE - DO NOT EDIT" in head, out.path


def _check(root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root / "spec"))
    return subprocess.run([sys.executable, "-m", "splitnic_spec.generate", "--check", "--root", str(root)],
                          env=env, capture_output=True, text=True, cwd=root)


def test_changing_the_spec_without_generate_is_caught(tmp_path: Path) -> None:
    """Edit a field width in a copy of the spec: the drift check must fail and name the files."""
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "spec" / "splitnic_spec", root / "spec" / "splitnic_spec",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for out in outputs():
        (root / out.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / out.path, root / out.path)
    assert _check(root).returncode == 0, "an untouched copy must pass"

    nic = root / "spec" / "splitnic_spec" / "nic.py"
    text, n = re.subn(r'Field\("LEN", 0, 14,', 'Field("LEN", 0, 15,', nic.read_text())
    assert n == 1, "the field this test edits has moved; update the test"
    nic.write_text(text)

    result = _check(root)
    assert result.returncode == 1
    for path in ("hostdrv/kmod/splitnic_spec.h", "firmware/include/splitnic_spec.h", "docs/registers.md"):
        assert f"stale: {path}" in result.stderr
    # The tunnel's header does not depend on the NIC's register map (tests/spec/test_abi_hash.py).
    assert "stale: hostdrv/kmod/splitnic_tunnel.h" not in result.stderr
