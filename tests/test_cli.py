"""The console command is installed and answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_splitnic_help_from_the_venv() -> None:
    exe = Path(sys.executable).parent / "splitnic"
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: splitnic")
