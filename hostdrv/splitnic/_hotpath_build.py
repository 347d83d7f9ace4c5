"""cffi builder of the driver's C hot path (``splitnic._hotpath_cffi``).

Ref: hostdrv/kmod/splitnic_spec.h (generated from gateware/splitnic_spec/nic.py).

``setup.py`` names this file in ``cffi_modules``, so ``pip install -e .``
compiles it; by hand::

    .venv/bin/python hostdrv/splitnic/_hotpath_build.py

The cdef is the generated spec header (as :func:`splitnic_spec.generate.cdef`
trims it) plus the block between ``cdef-begin`` and ``cdef-end`` in
``_hotpath.c``: no declaration is written twice.
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


def c_block(source: Path) -> str:
    """The declarations between the ``cdef-begin`` and ``cdef-end`` markers of ``source``."""
    match = re.search(r"/\* cdef-begin.*?\*/(.*?)/\* cdef-end \*/", source.read_text(), re.S)
    if not match:
        raise RuntimeError(f"{source}: no cdef-begin/cdef-end block")
    return _header_cdef(match.group(1))


ffibuilder = cffi.FFI()
ffibuilder.cdef(_header_cdef(SPEC_HEADER.read_text()))
ffibuilder.cdef(c_block(HERE / "_hotpath.c"))
ffibuilder.set_source(
    "splitnic._hotpath_cffi",
    '#include "_hotpath.c"',
    include_dirs=[str(SPEC_HEADER.parent), str(HERE)],
    depends=[str(HERE / "_hotpath.c"), str(SPEC_HEADER)],
    extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
)


if __name__ == "__main__":
    import shutil
    out = ffibuilder.compile(tmpdir=str(REPO / "build" / "cffi"))
    shutil.copy(out, HERE / Path(out).name)
    print(HERE / Path(out).name)
