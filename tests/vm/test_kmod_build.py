"""splitnic.ko builds clean against Debian's headers, passes checkpatch, and its uapi agrees everywhere.

Ref: hostdrv/kmod/Makefile; spec/splitnic_spec/tunnel.py (the uapi the
generated splitnic_tunnel.h carries); Linux scripts/checkpatch.pl.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import cffi
import pytest

from splitnic_spec import tunnel as spec
from splitnic_spec.generate import cdef

from . import guest

KMOD = guest.KMOD_SRC


KERNELS = guest.kernel_versions()


def test_both_debian_12_kernel_series_are_installed() -> None:
    """make setup installs Debian 12's 6.1 (linux-headers-amd64) and its 6.12 kernel and headers."""
    series = {tuple(int(n) for n in ver.split(".")[:2]) for ver in KERNELS}
    assert (6, 1) in series and any(s >= (6, 12) for s in series), KERNELS


@pytest.mark.parametrize("ver", KERNELS)
def test_module_builds_without_warnings_at_w1(tmp_path: Path, ver: str) -> None:
    result = subprocess.run(["make", "-C", str(KMOD), f"KVER={ver}", f"BUILD={tmp_path}/kmod", "W=1"],
                            capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert (tmp_path / "kmod" / "splitnic.ko").exists()
    assert "CC [M]" in out, "the module was not compiled from scratch"
    assert not re.findall(r"(?i)warning:|error:", out), out


def test_module_targets_the_packaged_kernel_not_the_running_one() -> None:
    ver = guest.kernel_version()
    result = subprocess.run(["make", "-C", str(KMOD), "-n", "modules"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"make -C /usr/src/linux-headers-{ver} M=" in result.stdout
    assert "uname" not in (KMOD / "Makefile").read_text().replace("`uname -r`", "")


def test_checkpatch_strict_is_clean() -> None:
    result = subprocess.run(["make", "-s", "-C", str(KMOD), "checkpatch"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "total: 0 errors, 0 warnings, 0 checks" in result.stdout


def test_checkpatch_would_catch_a_style_problem(tmp_path: Path) -> None:
    """The checkpatch run can fail: a copy with a long line and a space before a tab is flagged."""
    subprocess.run(["make", "-s", "-C", str(KMOD), "checkpatch"], capture_output=True, timeout=300)
    bad = tmp_path / "bad.c"
    bad.write_text((KMOD / "splitnic.c").read_text().replace("\tint ret;\n", " \tint ret; /* " + "x" * 100 + " */\n", 1))
    script = guest.REPO_ROOT / ".cache" / "checkpatch" / "scripts" / "checkpatch.pl"
    result = subprocess.run(["perl", str(script), "--no-tree", "--strict", "--show-types", "-f", str(bad)],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "SPACE_BEFORE_TAB" in result.stdout and "LONG_LINE" in result.stdout


def _tag(st) -> str:
    return "snic_tun_" + "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(st.name))


def test_uapi_header_uses_linux_types_and_ioctl_macros() -> None:
    header = (KMOD / "splitnic_tunnel.h").read_text()
    assert "#include <linux/ioctl.h>" in header and "#include <linux/types.h>" in header
    assert not re.search(r"\buint\d+_t\b", header)
    for name, _direction, nr, _arg in spec.IOCTLS:
        assert re.search(rf"#define SNIC_TUN_{name} _IO[RW]*\(SNIC_TUN_IOC_MAGIC, {nr}\b", header), name


def test_ioctl_numbers_and_layouts_agree_with_the_c_compiler(tmp_path: Path) -> None:
    """The numbers computed in Python (what the driver uses) equal the header's linux/ioctl.h macros."""
    checks = [f"SNIC_TUN_{name} == {spec.constant(name):#x}u" for name, *_ in spec.IOCTLS]
    checks.append("SNIC_TUN_IOC_DESTROY == _IO(SNIC_TUN_IOC_MAGIC, 3)")
    for st in spec.STRUCTS:
        checks.append(f"sizeof(struct {_tag(st)}) == {st.size}")
        checks += [f"offsetof(struct {_tag(st)}, {m.name}) == {st.offset_of(m.name)}" for m in st.members]
    src = tmp_path / "uapi.c"
    src.write_text("#include <stddef.h>\n#include \"splitnic_tunnel.h\"\n"
                   + "".join(f"_Static_assert({c}, \"{c}\");\n" for c in checks))
    result = subprocess.run(["gcc", "-fsyntax-only", "-Wall", "-Werror", f"-I{KMOD}", str(src)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # And the check can fail: a wrong number is rejected.
    src.write_text(src.read_text().replace("_IO(SNIC_TUN_IOC_MAGIC, 3)", "_IO(SNIC_TUN_IOC_MAGIC, 7)"))
    assert subprocess.run(["gcc", "-fsyntax-only", f"-I{KMOD}", str(src)], capture_output=True).returncode != 0


def test_cffi_reads_the_same_uapi_as_python() -> None:
    ffi = cffi.FFI()
    ffi.cdef(cdef((KMOD / "splitnic_tunnel.h").read_text()))
    lib = ffi.dlopen(None)
    ioctls = {name for name, *_ in spec.IOCTLS}
    for c in spec.CONSTANTS:
        if c.name not in ioctls:  # macros: the compiler test above checks them
            assert getattr(lib, f"SNIC_TUN_{c.name}") == c.value, c.name
    assert lib.SNIC_TUN_SPEC_HASH == spec.SPEC_HASH
    for st in spec.STRUCTS:
        assert ffi.sizeof(f"struct {_tag(st)}") == st.size
        for m in st.members:
            assert ffi.offsetof(f"struct {_tag(st)}", m.name) == st.offset_of(m.name), (st.name, m.name)


def test_counter_names_header_follows_the_spec() -> None:
    header = (KMOD / "splitnic_counters.h").read_text()
    assert re.findall(r'^\t"(\w+)",$', header, re.M) == list(spec.NIC_COUNTERS)
    assert len(spec.NIC_COUNTERS) == spec.constant("COUNTERS")
    assert all(len(name) < 32 for name in spec.NIC_COUNTERS), "ETH_GSTRING_LEN"


def test_area_layout_matches_the_module_limits() -> None:
    lo, hi = spec.constant("RING_LOG2_MIN"), spec.constant("RING_LOG2_MAX")
    smallest = spec.area_layout(lo, lo, spec.constant("SLOT_SIZE_MIN"))
    assert smallest["k2u_desc"] == spec.constant("CTRL_SIZE")
    assert all(v % spec.constant("AREA_ALIGN") == 0 for v in smallest.values())
    assert spec.area_layout(hi, hi, spec.constant("SLOT_SIZE_MAX"))["area_size"] > spec.constant("AREA_MAX")
    assert spec.MTU_MAX + spec.constant("FRAME_OVERHEAD") <= spec.constant("SLOT_SIZE_MAX")


@pytest.mark.parametrize("ver", KERNELS)
def test_dkms_make_line_builds_for_each_installed_kernel(tmp_path: Path, ver: str) -> None:
    """dkms.conf's MAKE[0], run the way DKMS runs it: the sources copied into its build tree."""
    build = tmp_path / "splitnic" / "0.1" / "build"
    build.mkdir(parents=True)
    for src in KMOD.iterdir():
        if src.is_file():
            (build / src.name).write_bytes(src.read_bytes())
    result = subprocess.run(["bash", "-c", f"set -eu; kernel_source_dir=/usr/src/linux-headers-{ver} "
                             f"dkms_tree={tmp_path}; . ./dkms.conf; eval \"${{MAKE[0]}}\""],
                            cwd=build, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (build / "splitnic.ko").exists()
    info = subprocess.run(["modinfo", "-F", "vermagic", str(build / "splitnic.ko")], capture_output=True, text=True)
    assert info.stdout.split()[0] == ver


@pytest.mark.parametrize("key", ["PACKAGE_NAME", "PACKAGE_VERSION", "BUILT_MODULE_NAME[0]", "MAKE[0]"])
def test_dkms_conf_defines(key: str) -> None:
    var = key.replace("[0]", "")
    result = subprocess.run(["bash", "-c", f"set -eu; kernel_source_dir=K dkms_tree=T; . ./dkms.conf; "
                             f"echo \"${{{var}[0]}}\""], cwd=KMOD, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    value = result.stdout.strip()
    assert value
    if key == "BUILT_MODULE_NAME[0]":
        assert f"obj-m := {value}.o" in (KMOD / "Kbuild").read_text()
    if key == "MAKE[0]":
        assert value.startswith("make -C K M=T/splitnic/")
