"""The QEMU guest helper itself: kernel choice, module order, initramfs, console checks.

Ref: tests/vm/guest.py.
"""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest

from . import guest


def test_kernel_version_comes_from_the_installed_packages() -> None:
    ver = guest.kernel_version()
    assert Path(f"/boot/vmlinuz-{ver}").exists()
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", f"linux-image-{ver}"],
                            capture_output=True, text=True).stdout
    assert status == "install ok installed"


def test_boot_modules_come_after_their_dependencies() -> None:
    order = [p.name for p in guest._module_order(guest.kernel_version(), guest.BOOT_MODULES)]
    assert order.index("virtio_ring.ko") < order.index("virtio.ko") < order.index("virtio_pci.ko")
    assert order.index("9pnet.ko") < order.index("9pnet_virtio.ko")
    assert order.index("netfs.ko") < order.index("9p.ko") and order[-1] == "9p.ko"
    assert len(order) == len(set(order))


def test_other_kernels_come_from_dpkg_too() -> None:
    versions = guest.kernel_versions()
    assert versions[0] == guest.kernel_version() and len(set(versions)) == len(versions)
    for ver in versions:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", f"linux-headers-{ver}"],
                                capture_output=True, text=True).stdout
        assert status == "install ok installed", ver


@pytest.mark.parametrize("ver", guest.kernel_versions())
def test_initramfs_is_a_cpio_with_busybox_init_and_modules(tmp_path: Path, ver: str) -> None:
    path = guest.build_initramfs(ver)
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=gzip.decompress(path.read_bytes()),
                             capture_output=True).stdout.decode().split()
    assert {"init", "bin/busybox", "modules.order", "modules/9p.ko"} <= set(listing)
    builtin = (Path(f"/lib/modules/{ver}") / "modules.builtin").read_text()
    assert ("modules/virtio_pci.ko" in listing) != ("/virtio_pci.ko\n" in builtin)
    # Compressed modules (6.12's .ko.xz) are stored as plain ELF for busybox's insmod.
    subprocess.run(["cpio", "-i", "--quiet", "-d", "modules/9p.ko"], input=gzip.decompress(path.read_bytes()),
                   cwd=tmp_path, check=True)
    assert (tmp_path / "modules" / "9p.ko").read_bytes()[:4] == b"\x7fELF"
    assert guest.build_initramfs(ver) == path, "an unchanged initramfs is reused"


def test_console_problems_flags_oopses_and_warnings() -> None:
    log = "\n".join([
        "[    8.8] splitnic: /dev/splitnic ready",
        "[    9.1] WARNING: CPU: 0 PID: 1 at net/core/dev.c:1 foo+0x1/0x2",
        "[    9.2] BUG: kernel NULL pointer dereference, address: 0000000000000000",
        "[    9.3] Oops: 0000 [#1] PREEMPT SMP NOPTI",
        "[    9.4] Call Trace:",
        "[    9.5] sn1: u2k entry 3: length 13 (allowed 14..1518) flags 0x0, dropped",
    ])
    assert len(guest.console_problems(log)) == 4
    assert guest.console_problems("[ 1.0] sn1: k2u consumer index 5 is not within one ring\n") == []
