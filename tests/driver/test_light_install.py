"""The driver installs alone: ``pip install .`` brings the CLI and cffi, no toolchain, and it drives a NIC.

Ref: tests/light_install.py (how the venv is made); README.md, "Installing the driver alone".
"""

from __future__ import annotations

import re
import subprocess

from splitnic_sim.softnic import SoftNic
from tests.light_install import TOOLCHAIN_MODULES, LightInstall


def _run(venv: LightInstall, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv.splitnic), *args], capture_output=True, text=True, timeout=60)


def test_no_toolchain_comes_with_the_driver(light_install: LightInstall) -> None:
    code = ("import importlib.util\n"
            f"print(' '.join(m for m in {TOOLCHAIN_MODULES!r} if importlib.util.find_spec(m)))")
    result = subprocess.run([str(light_install.python), "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [], f"pip install . brought toolchains: {result.stdout.strip()}"


def test_help_lists_every_command(light_install: LightInstall) -> None:
    result = _run(light_install, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("info", "stats", "up", "rules", "flash", "sim", "demo"):
        assert f"    {command}" in result.stdout, f"{command} missing from:\n{result.stdout}"


def test_info_drives_the_software_nic(light_install: LightInstall, softnic: SoftNic) -> None:
    result = _run(light_install, "info", "--link", softnic.link)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^spec: +\S+ hash 0x[0-9a-f]{8}$", result.stdout, re.M), result.stdout
    assert "(mmio, zero-copy)" in result.stdout, result.stdout


def test_a_toolchain_command_says_what_to_install(light_install: LightInstall) -> None:
    result = _run(light_install, "sim", "--socket", "/nonexistent/nic.sock")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "pip install 'splitnic[sim]'" in result.stderr, result.stderr
