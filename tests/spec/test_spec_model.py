"""The spec is self-consistent and its packers agree with the C compiler."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cffi
import pytest

import splitnic_spec as spec
from splitnic_spec import COMPLETION, CSR_MAP, DESCRIPTOR, Constant, Field, Register, SpecError, Struct, StructField
from splitnic_spec.generate import cdef

from ..conftest import REPO_ROOT

HEADER = REPO_ROOT / "hostdrv" / "kmod" / "splitnic_spec.h"


def test_overlapping_fields_are_refused() -> None:
    with pytest.raises(SpecError, match="overlaps"):
        Register("X", 0, spec.Access.RW, "x", (Field("A", 0, 4, "a"), Field("B", 3, 2, "b")))


def test_misaligned_struct_member_is_refused() -> None:
    with pytest.raises(SpecError, match="naturally aligned"):
        Struct("Bad", "bad", (StructField("a", 8, "a"), StructField("b", 32, "b")))


def test_register_offsets_are_unique_and_inside_the_window() -> None:
    offsets = [off for _name, off, _reg in CSR_MAP.all_registers()]
    assert len(offsets) == len(set(offsets))
    assert max(offsets) < CSR_MAP.size


def test_field_pack_rejects_values_that_do_not_fit() -> None:
    ctrl = CSR_MAP.array("STEER").register("CTRL")
    assert ctrl.pack(ENABLE=1, QUEUE=3) == 0x301
    with pytest.raises(ValueError, match="must fit in 4 bits"):
        ctrl.pack(QUEUE=16)


def test_struct_round_trip() -> None:
    values = {"cookie": 0xDEADBEEF, "length": 1514, "queue": 2, "status": 0, "timestamp": 12345,
              "rule": 7, "reserved0": 0, "reserved1": 0, "flags": 1}
    raw = COMPLETION.pack(**values)
    assert len(raw) == COMPLETION.size == 16
    assert COMPLETION.unpack(raw) == values
    # PHASE lives in the last byte: the NIC writes it last.
    assert COMPLETION.offset_of("flags") == COMPLETION.size - 1


def test_c_layout_matches_the_spec(tmp_path: Path) -> None:
    """gcc agrees with the spec on every struct size and member offset."""
    checks = []
    for st, tag in ((DESCRIPTOR, "snic_descriptor"), (COMPLETION, "snic_completion")):
        checks.append(f'printf("{st.name} size %zu\\n", sizeof(struct {tag}));')
        for m in st.members:
            checks.append(f'printf("{st.name}.{m.name} %zu\\n", offsetof(struct {tag}, {m.name}));')
    src = tmp_path / "layout.c"
    src.write_text("#include <stddef.h>\n#include <stdio.h>\n#include \"splitnic_spec.h\"\n"
                   "int main(void) {\n" + "\n".join(checks) + "\nreturn 0;\n}\n")
    exe = tmp_path / "layout"
    subprocess.run(["gcc", "-Wall", "-Wextra", "-Werror", "-std=c11", f"-I{HEADER.parent}", str(src), "-o", str(exe)],
                   check=True)
    out = dict(line.rsplit(" ", 1) for line in subprocess.run([exe], capture_output=True, text=True,
                                                               check=True).stdout.splitlines())
    for st in (DESCRIPTOR, COMPLETION):
        assert int(out[f"{st.name} size"]) == st.size
        for m in st.members:
            assert int(out[f"{st.name}.{m.name}"]) == st.offset_of(m.name), f"{st.name}.{m.name}"


def test_header_parses_with_cffi() -> None:
    ffi = cffi.FFI()
    ffi.cdef(cdef(HEADER.read_text()))
    lib = ffi.dlopen(None)
    assert ffi.sizeof("struct snic_completion") == COMPLETION.size
    assert lib.SNIC_REG_CTRL == CSR_MAP.register("CTRL").offset
    assert lib.SNIC_SPEC_HASH == spec.SPEC_HASH


def test_enumerated_field_values_must_fit_and_reach_the_header() -> None:
    with pytest.raises(SpecError, match="does not fit"):
        Field("X", 0, 1, "x", values=(Constant("TWO", 2, "two"),))
    with pytest.raises(SpecError, match="duplicate"):
        Field("X", 0, 2, "x", values=(Constant("A", 1, "a"), Constant("B", 1, "b")))
    speed = CSR_MAP.register("LINK").field("SPEED")
    assert {speed.value(str(mbps)): mbps for mbps in spec.LINK_SPEED_MBPS.values()} == spec.LINK_SPEED_MBPS
    text = HEADER.read_text()
    for code, mbps in spec.LINK_SPEED_MBPS.items():
        assert f"#define SNIC_LINK_SPEED_{mbps} {code}\t" in text


def test_ring_index_rules_wrap_at_the_index_width() -> None:
    assert spec.INDEX_MASK == (1 << spec.constant("INDEX_BITS")) - 1
    assert spec.ring_next(spec.INDEX_MASK) == 0 and spec.ring_next(5, 3) == 8
    assert spec.ring_used(spec.INDEX_MASK - 7, 8) == 16
    assert [spec.ring_slot(i, 4) for i in (0, 15, 16, 0x1_0011)] == [0, 15, 0, 1]
    # The phase flips every lap, also across the index's wrap (2**16 is a whole number of laps).
    assert [spec.completion_phase(i, 4) for i in (0, 15, 16, 32, spec.INDEX_MASK, 0)] == [1, 1, 0, 1, 0, 1]
