"""Boot Debian's kernel in QEMU (TCG) and run the project's own code inside it.

Ref: QEMU docs "9p (virtfs)"; Linux Documentation/filesystems/9p.rst.

The machine's own kernel has no module support, so splitnic.ko is tested in
a guest:

* the kernel is Debian's ``/boot/vmlinuz-<ver>``, ``<ver>`` taken from dpkg
  (the package linux-headers-amd64 depends on; never ``uname -r``);
  :func:`kernel_versions` also lists the other installed kernels that have
  their headers (Debian 12's 6.12 beside its 6.1), which the suite boots too;
* a tiny initramfs (busybox-static + the virtio/9p modules of
  ``/lib/modules/<ver>``, loaded with insmod by path, in modules.dep order)
  is built into ``.cache/vm/``;
* the initramfs mounts the host's ``/`` read-only over virtio-9p, mounts
  proc/sys/dev/tmpfs inside it, mounts a writable 9p share (a job folder
  under ``.cache/vm/jobs/``) at the same path, and chroots, so the guest runs
  the repository's own ``.venv`` Python;
* the job is a shell script in the share; its output, exit status and the
  guest's dmesg come back through the share, the serial console goes to a
  file that :func:`console_problems` checks for oopses and warnings.

QEMU always runs with ``-accel tcg`` under ``timeout``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VM_CACHE = REPO_ROOT / ".cache" / "vm"
KMOD_SRC = REPO_ROOT / "hostdrv" / "kmod"
BUSYBOX = Path("/bin/busybox")
#: Modules the initramfs needs for virtio-9p, with their dependencies resolved from modules.dep.
BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p")
#: Console lines that mean the kernel complained.
PROBLEM = re.compile(r"Oops|BUG:|WARNING:|Call Trace|general protection fault|Kernel panic")

_INIT = r"""#!/bin/busybox sh
# splitnic guest init: load 9p, mount the host read-only, chroot and run the job.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod /modules/$m || echo "splitnic-init: insmod $m failed"; done
job=$(sed -n 's/.*splitnic.job=\([^ ]*\).*/\1/p' /proc/cmdline)
repo=$(sed -n 's/.*splitnic.repo=\([^ ]*\).*/\1/p' /proc/cmdline)
R=/newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot $R || echo "splitnic-init: no host root"
# A checkout under /tmp would vanish under the guest's tmpfs /tmp: keep it visible.
case $repo in /tmp/*) mkdir -p /keep && mount --bind $R$repo /keep;; esac
mount -t tmpfs tmp $R/tmp
case $repo in /tmp/*) mkdir -p $R$repo && mount --bind /keep $R$repo;; esac
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 share $R$job || echo "splitnic-init: no share"
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/shm $R/dev/pts
mount -t tmpfs shm $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs run $R/run
echo "splitnic-init: running $job/job.sh"
chroot $R /bin/sh -c "cd $job && /bin/sh $job/job.sh > $job/job.log 2>&1; echo \$? > $job/rc; dmesg > $job/dmesg.txt"
echo "splitnic-init: job exited $(cat $R$job/rc)"
sync
poweroff -f
"""


class GuestError(RuntimeError):
    """The guest could not be prepared or booted."""


def _check_kernel(ver: str) -> str:
    for path in (Path(f"/boot/vmlinuz-{ver}"), Path(f"/lib/modules/{ver}/modules.dep"),
                 Path(f"/usr/src/linux-headers-{ver}")):
        if not path.exists():
            raise GuestError(f"{path} is missing: install linux-image-{ver} and linux-headers-{ver} ('make setup')")
    return ver


def kernel_version() -> str:
    """Version of Debian's kernel the tests boot, e.g. ``6.1.0-56-amd64`` (from dpkg, not uname)."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Depends}", "linux-headers-amd64"],
                         capture_output=True, text=True)
    m = re.match(r"linux-headers-(\S+)", out.stdout)
    if out.returncode or not m:
        raise GuestError("linux-headers-amd64 is not installed: run 'make setup'")
    return _check_kernel(m.group(1).rstrip(","))


def _version_key(ver: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", ver))


def kernel_versions() -> list[str]:
    """Every installed Debian kernel with its headers: :func:`kernel_version` first, then the others.

    From dpkg (``linux-image-<ver>`` and ``linux-headers-<ver>`` both
    installed), never from ``uname -r``.
    """
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status}\n", "linux-image-[0-9]*",
                          "linux-headers-[0-9]*"], capture_output=True, text=True).stdout
    packages = {line.split()[0] for line in out.splitlines() if line.endswith(" install ok installed")}
    found = {p.removeprefix("linux-image-") for p in packages if p.startswith("linux-image-")
             and p.replace("linux-image-", "linux-headers-", 1) in packages and p.endswith("-amd64")}
    first = kernel_version()
    return [first] + sorted((_check_kernel(v) for v in found - {first}), key=_version_key)


def module_build_dir(ver: str) -> Path:
    """Where ``make -C hostdrv/kmod`` puts splitnic.ko for kernel ``ver``."""
    return REPO_ROOT / "build" / "kmod" / ver


def build_module(ver: str, extra: tuple[str, ...] = ("W=1",)) -> tuple[Path, str]:
    """Build splitnic.ko against linux-headers-``ver``; returns (path of the .ko, compiler output)."""
    result = subprocess.run(["make", "-C", str(KMOD_SRC), f"KVER={ver}", *extra],
                            capture_output=True, text=True, timeout=300)
    if result.returncode:
        raise GuestError(f"building splitnic.ko failed:\n{result.stdout}\n{result.stderr}")
    return module_build_dir(ver) / "splitnic.ko", result.stdout + result.stderr


def _module_name(path: str) -> str:
    """``virtio_pci`` for ``kernel/drivers/virtio/virtio_pci.ko.xz`` (and ``-`` spelled ``_``)."""
    return Path(path).name.split(".ko")[0].replace("-", "_")


def _module_order(ver: str, wanted: tuple[str, ...]) -> list[Path]:
    """``wanted`` modules and their dependencies, dependencies first (from modules.dep).

    Modules built into the kernel (modules.builtin: virtio_pci in 6.12) need
    no file and are left out.
    """
    base = Path(f"/lib/modules/{ver}")
    deps: dict[str, list[str]] = {}
    for line in (base / "modules.dep").read_text().splitlines():
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
    by_name = {_module_name(m): m for m in deps}
    builtin_file = base / "modules.builtin"
    builtin = {_module_name(m) for m in builtin_file.read_text().split()} if builtin_file.exists() else set()
    wanted = tuple(name for name in wanted if name not in builtin)
    order: list[str] = []

    def visit(mod: str) -> None:
        # modules.dep lists a module's full dependency closure, nearest first.
        for dep in reversed(deps[mod]):
            if dep not in order:
                visit(dep)
        if mod not in order:
            order.append(mod)

    for name in wanted:
        if name not in by_name:
            raise GuestError(f"module {name} not found in {base}/modules.dep")
        visit(by_name[name])
    return [base / m for m in order]


def _cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (path, mode, data) entries (directories have empty data)."""
    out = io.BytesIO()
    for ino, (name, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], start=1):
        raw = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0]
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + raw)
        out.write(b"\0" * (-(110 + len(raw)) % 4) + data + b"\0" * (-len(data) % 4))
    return out.getvalue()


def _module_file(path: Path) -> str:
    """Name of a module in the initramfs: uncompressed (``9p.ko`` for ``9p.ko.xz``)."""
    return path.name.split(".ko")[0] + ".ko"


def _module_bytes(path: Path) -> bytes:
    """A module file, decompressed: busybox's insmod loads plain ELF only (6.12 ships .ko.xz)."""
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".gz":
        return gzip.decompress(data)
    return data


def build_initramfs(ver: str) -> Path:
    """The guest's initramfs for kernel ``ver`` in .cache/vm/ (rebuilt when an input changes)."""
    if not BUSYBOX.exists():
        raise GuestError(f"{BUSYBOX} is missing: install busybox-static ('make setup')")
    modules = _module_order(ver, BOOT_MODULES)
    key = hashlib.sha256(_INIT.encode() + BUSYBOX.read_bytes()
                         + b"".join(m.read_bytes() for m in modules)).hexdigest()[:16]
    path = VM_CACHE / f"initramfs-{ver}-{key}.cpio.gz"
    if path.exists():
        return path
    entries: list[tuple[str, int, bytes]] = [(d, 0o40755, b"") for d in
                                             ("bin", "dev", "proc", "sys", "newroot", "modules")]
    entries += [("bin/busybox", 0o100755, BUSYBOX.read_bytes()), ("init", 0o100755, _INIT.encode()),
                ("modules.order", 0o100644, "".join(f"{_module_file(m)}\n" for m in modules).encode())]
    entries += [(f"modules/{_module_file(m)}", 0o100644, _module_bytes(m)) for m in modules]
    VM_CACHE.mkdir(parents=True, exist_ok=True)
    for old in VM_CACHE.glob(f"initramfs-{ver}-*.cpio.gz"):
        old.unlink()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(_cpio_newc(entries), compresslevel=1))
    tmp.rename(path)
    return path


def console_problems(text: str) -> list[str]:
    """Console lines reporting an oops, BUG, WARNING or call trace."""
    return [line for line in text.splitlines() if PROBLEM.search(line)]


@dataclass
class GuestRun:
    """What came back from one boot."""
    returncode: int | None      #: the job's exit status; None if it never finished
    output: str                 #: the job's stdout+stderr
    console: str                #: the serial console log
    dmesg: str                  #: the guest's dmesg at the end of the job
    share: Path                 #: the job folder (also writable from the guest)
    seconds: float              #: wall time of the boot
    qemu_status: int            #: QEMU's exit status (124: killed by timeout)

    def problems(self) -> list[str]:
        """Oops/BUG/WARNING/Call Trace lines of the console log."""
        return console_problems(self.console)


def run_in_guest(script: str, *, name: str = "job", timeout: float = 300, memory_mb: int = 1024,
                 cpus: int = 2, env: dict[str, str] | None = None, kernel: str | None = None) -> GuestRun:
    """Boot the guest, run shell ``script`` (cwd: the job folder) as root, power off.

    ``kernel`` is a version from :func:`kernel_versions` (default:
    :func:`kernel_version`).  ``env`` is exported to the script;
    ``SPLITNIC_GUEST=1``, ``SPLITNIC_SHARE`` (the job folder),
    ``SPLITNIC_REPO`` and ``SPLITNIC_KVER`` always are.
    """
    ver = _check_kernel(kernel) if kernel else kernel_version()
    initrd = build_initramfs(ver)
    share = VM_CACHE / "jobs" / f"{name}-{os.getpid()}-{time.monotonic_ns()}"
    share.mkdir(parents=True)
    variables = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp",
                 "PYTHONDONTWRITEBYTECODE": "1", "SPLITNIC_GUEST": "1", "SPLITNIC_SHARE": str(share),
                 "SPLITNIC_REPO": str(REPO_ROOT), "SPLITNIC_KVER": ver, **(env or {})}
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in variables.items())
    (share / "job.sh").write_text(f"set -e\n{exports}cd {shlex.quote(str(REPO_ROOT))}\n{script}\n")
    console = share / "console.log"
    cmd = ["timeout", "--kill-after=5", str(int(timeout)), "qemu-system-x86_64", "-accel", "tcg",
           "-m", str(memory_mb), "-smp", str(cpus), "-display", "none", "-monitor", "none", "-no-reboot",
           "-nic", "none", "-serial", f"file:{console}",
           "-kernel", f"/boot/vmlinuz-{ver}", "-initrd", str(initrd),
           "-append", f"console=ttyS0 panic=-1 splitnic.job={share} splitnic.repo={REPO_ROOT}",
           "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
           "-virtfs", f"local,path={share},mount_tag=share,security_model=none"]
    start = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if result.returncode not in (0, 124) and not console.exists():
        raise GuestError(f"qemu failed ({result.returncode}): {result.stderr.strip()}")

    def read(p: Path) -> str:
        return p.read_text(errors="replace") if p.exists() else ""

    rc_text = read(share / "rc").strip()
    return GuestRun(returncode=int(rc_text) if rc_text.isdigit() else None, output=read(share / "job.log"),
                    console=read(console), dmesg=read(share / "dmesg.txt"), share=share,
                    seconds=seconds, qemu_status=result.returncode)


def clean_jobs(keep: int = 10) -> None:
    """Delete all but the newest ``keep`` job folders in .cache/vm/jobs."""
    jobs = sorted((VM_CACHE / "jobs").glob("*"), key=lambda p: p.stat().st_mtime)
    for old in jobs[:-keep] if keep else jobs:
        shutil.rmtree(old, ignore_errors=True)
