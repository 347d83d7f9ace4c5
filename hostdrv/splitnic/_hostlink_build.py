"""cffi builder of the host side of the eth host link (``splitnic._hostlink_cffi``).

Ref: spec/splitnic_spec/cffi_build.py (how the spec-based C modules are built);
hostdrv/splitnic/hostlink_spec.h (generated from spec/splitnic_spec/hostlink.py).

The cdef is the host-link header (as :func:`splitnic_spec.generate.cdef`
trims it) plus the ``cdef-begin`` .. ``cdef-end`` block of ``_hostlink.c``.
``setup.py`` names this file in ``cffi_modules``, so ``pip install -e .``
compiles it; by hand::

    .venv/bin/python hostdrv/splitnic/_hostlink_build.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "spec"))  # build isolation: splitnic_spec is plain Python

from splitnic_spec.cffi_build import c_block, compile_here  # noqa: E402
from splitnic_spec.generate import cdef  # noqa: E402

SOURCE = HERE / "_hostlink.c"
HEADER = HERE / "hostlink_spec.h"


def hostlink_ffibuilder():
    """A ``cffi.FFI`` that compiles ``_hostlink.c`` as ``splitnic._hostlink_cffi``."""
    import cffi  # only the build needs it
    builder = cffi.FFI()
    builder.cdef(cdef(HEADER.read_text()))
    builder.cdef(c_block(SOURCE))
    builder.set_source("splitnic._hostlink_cffi", f'#include "{SOURCE.name}"',
                       include_dirs=[str(HERE)], depends=[str(SOURCE), str(HEADER)],
                       extra_compile_args=["-O2", "-pthread", "-Wall", "-Wno-unused-function"],
                       extra_link_args=["-pthread"])
    return builder


ffibuilder = hostlink_ffibuilder()

if __name__ == "__main__":
    print(compile_here(ffibuilder, SOURCE))
