"""cffi builder of the software NIC model (``splitnic_sim._softnic_cffi``).

Ref: hostdrv/kmod/splitnic_spec.h (generated from gateware/splitnic_spec/nic.py).

``setup.py`` names this file in ``cffi_modules``; by hand::

    .venv/bin/python sim/splitnic_sim/_softnic_build.py

The cdef is the generated spec header plus the block between ``cdef-begin``
and ``cdef-end`` in ``softnic.c``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import cffi

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SPEC_HEADER = REPO / "hostdrv" / "kmod" / "splitnic_spec.h"
sys.path.insert(0, str(REPO / "gateware"))  # build isolation: splitnic_spec is plain Python

from splitnic_spec.generate import cdef as _header_cdef  # noqa: E402


def _c_block(source: Path) -> str:
    match = re.search(r"/\* cdef-begin.*?\*/(.*?)/\* cdef-end \*/", source.read_text(), re.S)
    if not match:
        raise RuntimeError(f"{source}: no cdef-begin/cdef-end block")
    return _header_cdef(match.group(1))


ffibuilder = cffi.FFI()
ffibuilder.cdef(_header_cdef(SPEC_HEADER.read_text()))
ffibuilder.cdef(_c_block(HERE / "softnic.c"))
ffibuilder.set_source(
    "splitnic_sim._softnic_cffi",
    '#include "softnic.c"',
    include_dirs=[str(SPEC_HEADER.parent), str(HERE)],
    depends=[str(HERE / "softnic.c"), str(SPEC_HEADER)],
    extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
)


if __name__ == "__main__":
    import shutil
    out = ffibuilder.compile(tmpdir=str(REPO / "build" / "cffi"))
    shutil.copy(out, HERE / Path(out).name)
    print(HERE / Path(out).name)
