"""Write (or check) every file derived from the spec.

    python -m splitnic_spec.generate            # rewrite stale files (make generate)
    python -m splitnic_spec.generate --check    # exit 1 and name the stale files

Outputs are committed and carry a do-not-edit banner; tests/spec runs the
check so a spec change without ``make generate`` fails the suite.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterable

from . import hostlink, nic, tunnel
from .model import Field, Register, RegisterArray, RegisterMap, Struct

REPO_ROOT = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------
# C header
# --------------------------------------------------------------------------

_C_TYPES = {8: "uint8_t", 16: "uint16_t", 32: "uint32_t", 64: "uint64_t"}
#: A Linux uapi header's types (linux/types.h), the same in the kernel and in user space.
_UAPI_TYPES = {8: "__u8", 16: "__u16", 32: "__u32", 64: "__u64"}


def _hex(value: int, digits: int = 0) -> str:
    return f"0x{value:0{digits}x}"


def _define(name: str, value: int | str, comment: str = "") -> str:
    # Small numbers read best in decimal; words and masks in hex.
    text = f"#define {name} {value if isinstance(value, str) else _hex(value) if value > 0xffff else value}"
    return f"{text}\t/* {comment} */" if comment else text


def _c_comment(text: str) -> str:
    # Keep comments one line and free of comment terminators.
    return " ".join(text.replace("*/", "* /").split())


def _value_defines(prefix: str, f: Field) -> list[str]:
    # The named values of an enumerated field, as codes (not shifted into place).
    return [_define(f"{prefix}_{f.name}_{v.name}", v.value, _c_comment(v.doc)) for v in f.values]


def _register_defines(prefix: str, reg: Register) -> list[str]:
    lines = []
    for f in reg.fields:
        lines.append(_define(f"{prefix}_{f.name}_SHIFT", f.lsb))
        lines.append(_define(f"{prefix}_{f.name}_MASK", _hex(f.mask, 8), _c_comment(f.doc)))
        lines += _value_defines(prefix, f)
    return lines


def _map_defines(p: str, csr: RegisterMap) -> list[str]:
    out = [f"/* Registers: byte offsets in the CSR window ({_hex(csr.size)} bytes). */",
           _define(f"{p}_CSR_SIZE", _hex(csr.size))]
    for reg in csr.registers:
        out.append(_define(f"{p}_REG_{reg.name}", _hex(reg.offset, 3), _c_comment(f"{reg.access.value}: {reg.doc}")))
        out += _register_defines(f"{p}_{reg.name}", reg)
    for arr in csr.arrays:
        out += ["", f"/* {arr.name}: {_c_comment(arr.doc)} */",
                _define(f"{p}_{arr.name}_BASE", _hex(arr.base, 3)),
                _define(f"{p}_{arr.name}_STRIDE", _hex(arr.stride)),
                _define(f"{p}_{arr.name}_COUNT", arr.count)]
        for reg in arr.registers:
            out.append(_define(f"{p}_{arr.name}_{reg.name}", _hex(reg.offset, 2),
                               _c_comment(f"{reg.access.value}: {reg.doc}")))
            out += _register_defines(f"{p}_{arr.name}_{reg.name}", reg)
    return out


def _struct_tag(p: str, st: Struct) -> str:
    return f"{p.lower()}_{re.sub(r'(?<!^)(?=[A-Z])', '_', st.name).lower()}"


def _struct_lines(p: str, st: Struct, types: dict[int, str] = _C_TYPES) -> list[str]:
    tag = _struct_tag(p, st)
    upper = tag.upper()
    out = [f"/* {_c_comment(st.doc)} */", f"struct {tag} {{"]
    for m in st.members:
        out.append(f"\t{types[m.width]} {m.name};\t/* {_c_comment(m.doc)} */")
    out += ["};", _define(f"{upper}_SIZE", st.size)]
    for m in st.members:
        for b in m.bits:
            out.append(_define(f"{upper}_{m.name.upper()}_{b.name}_SHIFT", b.lsb))
            out.append(_define(f"{upper}_{m.name.upper()}_{b.name}_MASK", _hex(b.mask, 2), _c_comment(b.doc)))
            out += _value_defines(f"{upper}_{m.name.upper()}", b)
    return out


def _ioctl_macro(p: str, spec: ModuleType, name: str) -> str | None:
    """``_IOWR(P_IOC_MAGIC, 1, struct p_if_req)`` for an ioctl of ``spec.IOCTLS``, else None."""
    for n, direction, nr, arg in getattr(spec, "IOCTLS", ()):
        if n == name:
            macro = spec.IOC_MACROS[direction]
            if arg is None:
                return f"{macro}({p}_IOC_MAGIC, {nr})"
            ctype = f"struct {_struct_tag(p, arg)}" if isinstance(arg, Struct) else f"__{arg}"
            return f"{macro}({p}_IOC_MAGIC, {nr}, {ctype})"
    return None


def render_c_header(spec: ModuleType, guard: str, source: str, uapi: bool = False) -> str:
    """The C header text for ``spec`` (a module with PREFIX, CONSTANTS, STRUCTS and maybe CSR_MAP).

    ``uapi``: a Linux uapi header (``__u32``, ioctl numbers as linux/ioctl.h
    macros over the structs), the same text in the kernel and in user space.
    """
    p = spec.PREFIX
    out = [
        "/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */",
        "/*",
        f" * GENERATED FILE - DO NOT EDIT. Made by `make generate` from {source}.",
        f" * {_c_comment(spec.TITLE)}, spec {spec.VERSION_MAJOR}.{spec.VERSION_MINOR}, hash {_hex(spec.SPEC_HASH, 8)}.",
    ]
    out += [
        " *",
        " * Only #defines and plain structs, so that cffi can parse it (splitnic_spec.generate.cdef",
        " * strips the guard lines and the ioctl macros; tests/vm checks those with the compiler).",
        " */",
    ] if uapi else [
        " *",
        " * Only literal #defines and plain structs, so that cffi can parse it",
        " * (splitnic_spec.generate.cdef strips the preprocessor guard lines).",
        " */",
    ]
    out += [
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
    ]
    if uapi:
        out += ["#include <linux/ioctl.h>", "#include <linux/types.h>"]
    else:
        out += ["#ifdef __KERNEL__", "#include <linux/types.h>", "#else", "#include <stdint.h>", "#endif"]
    out += [
        "",
        _define(f"{p}_SPEC_HASH", _hex(spec.SPEC_HASH, 8)),
        "",
        "/* Constants. */",
    ]
    for c in spec.CONSTANTS:
        macro = _ioctl_macro(p, spec, c.name) if uapi else None
        out.append(_define(f"{p}_{c.name}", macro if macro else c.value, _c_comment(c.doc)))
    if getattr(spec, "CSR_MAP", None) is not None:
        out += [""] + _map_defines(p, spec.CSR_MAP)
    for st in spec.STRUCTS:
        out += [""] + _struct_lines(p, st, _UAPI_TYPES if uapi else _C_TYPES)
    out += ["", f"#endif /* {guard} */", ""]
    return "\n".join(out)


def cdef(header_text: str) -> str:
    """The part of a generated header that ``cffi.FFI.cdef`` accepts.

    Drops the include guard, the ``#include`` block, value-less defines and
    ioctl numbers written as linux/ioctl.h macros; ``__u32`` becomes ``uint32_t``.
    """
    keep = []
    for line in header_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if not re.match(r"#define\s+\w+\s+\S", stripped) or re.match(r"#define\s+\w+\s+_IO", stripped):
                continue
            line = line.split("/*")[0].rstrip()
        keep.append(re.sub(r"\b__u(8|16|32|64)\b", r"uint\1_t", line))
    return "\n".join(keep)


def render_counters_header(spec: ModuleType, guard: str, source: str) -> str:
    """The kernel-only C header with ``spec.NIC_COUNTERS``'s names (ethtool -S)."""
    p = spec.PREFIX.lower()
    out = [
        "/* SPDX-License-Identifier: GPL-2.0 */",
        "/*",
        f" * GENERATED FILE - DO NOT EDIT. Made by `make generate` from {source}.",
        f" * {_c_comment(spec.TITLE)}, spec {spec.VERSION_MAJOR}.{spec.VERSION_MINOR}, hash {_hex(spec.SPEC_HASH, 8)}.",
        " *",
        " * The NIC's counters as IOC_PUBLISH carries them: their ethtool -S names.",
        " * Kernel only (needs ETH_GSTRING_LEN).",
        " */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <linux/ethtool.h>",
        "",
        f"static const char {p}_counter_names[][ETH_GSTRING_LEN] = {{",
    ]
    out += [f'\t"{name}",' for name in spec.NIC_COUNTERS]
    out += ["};", "", f"#endif /* {guard} */", ""]
    return "\n".join(out)

# --------------------------------------------------------------------------
# Markdown reference
# --------------------------------------------------------------------------

def _md(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _md_fields(reg: Register) -> str:
    if not reg.fields:
        return ""
    parts = []
    for f in reg.fields:
        bits = f"{f.lsb + f.width - 1}:{f.lsb}" if f.width > 1 else f"{f.lsb}"
        extra = " (strobe)" if f.strobe else ""
        values = "".join(f"<br>&nbsp;&nbsp;`{v.name}` = {v.value}: {_md(v.doc)}" for v in f.values)
        parts.append(f"`{f.name}` [{bits}]{extra}: {_md(f.doc)}{values}")
    return "<br>".join(parts)


def _md_register_rows(regs: Iterable[Register], absolute: bool) -> list[str]:
    rows = ["| offset | name | access | reset | description | fields |",
            "| --- | --- | --- | --- | --- | --- |"]
    for r in regs:
        rows.append(f"| `{_hex(r.offset, 3 if absolute else 2)}` | `{r.name}` | {r.access.value} | "
                    f"`{_hex(r.reset)}` | {_md(r.doc)} | {_md_fields(r)} |")
    return rows


def _md_struct(st: Struct) -> list[str]:
    rows = [f"### {st.name} ({st.size} bytes)", "", _md(st.doc), "",
            "| byte | member | bits | description |", "| --- | --- | --- | --- |"]
    for m in st.members:
        desc = _md(m.doc)
        if m.bits:
            desc += "<br>" + "<br>".join(f"`{b.name}` bit {b.lsb}: {_md(b.doc)}" for b in m.bits)
        rows.append(f"| {st.offset_of(m.name)} | `{m.name}` | {m.width} | {desc} |")
    return rows + [""]


def render_markdown(specs: Iterable[ModuleType]) -> str:
    """docs/registers.md: the register and format reference."""
    out = ["<!-- GENERATED FILE - DO NOT EDIT. Made by `make generate` from spec/splitnic_spec/. -->", ""]
    for spec in specs:
        out += [f"# {spec.TITLE}", "",
                f"Spec version {spec.VERSION_MAJOR}.{spec.VERSION_MINOR}, hash `{_hex(spec.SPEC_HASH, 8)}`.", ""]
        if spec.__doc__:
            out += [spec.__doc__.strip().split("\n\n", 1)[-1].strip(), ""]
        out += ["## Constants", "", "| name | value | meaning |", "| --- | --- | --- |"]
        out += [f"| `{c.name}` | `{_hex(c.value)}` ({c.value}) | {_md(c.doc)} |" for c in spec.CONSTANTS]
        out.append("")
        csr: RegisterMap | None = getattr(spec, "CSR_MAP", None)
        if csr is not None:
            out += ["## Registers", "", _md(csr.doc) + f" Size {_hex(csr.size)} bytes.", ""]
            out += _md_register_rows(csr.registers, absolute=True) + [""]
            for arr in csr.arrays:
                out += [f"### {arr.name}[0..{arr.count - 1}] at `{_hex(arr.base, 3)}` + n × `{_hex(arr.stride)}`",
                        "", _md(arr.doc), ""]
                out += _md_register_rows(arr.registers, absolute=False) + [""]
        if spec.STRUCTS:
            out += [f"## {getattr(spec, 'STRUCTS_TITLE', 'DMA structures')}", ""]
            for st in spec.STRUCTS:
                out += _md_struct(st)
    return "\n".join(out).rstrip() + "\n"

# --------------------------------------------------------------------------
# The list of generated files
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Output:
    """One generated file: where it goes and how to render it."""
    path: str
    render: Callable[[], str]


#: Spec modules with a C header, in the order docs/registers.md lists them.
SPECS: tuple[ModuleType, ...] = (nic, tunnel, hostlink)


def outputs() -> list[Output]:
    """Every file derived from the spec."""
    nic_header = lambda: render_c_header(nic, "SPLITNIC_SPEC_H", "spec/splitnic_spec/nic.py")  # noqa: E731
    return [
        Output("hostdrv/kmod/splitnic_spec.h", nic_header),
        Output("firmware/include/splitnic_spec.h", nic_header),
        Output("hostdrv/kmod/splitnic_tunnel.h",
               lambda: render_c_header(tunnel, "SPLITNIC_TUNNEL_H", "spec/splitnic_spec/tunnel.py", uapi=True)),
        Output("hostdrv/kmod/splitnic_counters.h",
               lambda: render_counters_header(tunnel, "SPLITNIC_COUNTERS_H", "spec/splitnic_spec/tunnel.py")),
        Output("hostdrv/splitnic/hostlink_spec.h",
               lambda: render_c_header(hostlink, "SPLITNIC_HOSTLINK_H", "spec/splitnic_spec/hostlink.py")),
        Output("docs/registers.md", lambda: render_markdown(SPECS)),
    ]


def stale(root: Path = REPO_ROOT) -> list[str]:
    """Paths (relative to ``root``) whose content differs from what the spec renders."""
    result = []
    for out in outputs():
        path = root / out.path
        if not path.exists() or path.read_text() != out.render():
            result.append(out.path)
    return result


def write(root: Path = REPO_ROOT) -> list[str]:
    """Rewrite the stale outputs; returns their paths."""
    changed = stale(root)
    for out in outputs():
        if out.path in changed:
            path = root / out.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(out.render())
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m splitnic_spec.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1 if any)")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale(args.root)
        for path in bad:
            print(f"stale: {path} differs from the spec; run 'make generate' and commit it", file=sys.stderr)
        return 1 if bad else 0
    for path in write(args.root):
        print(f"generated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
