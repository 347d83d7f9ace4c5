"""One way to build a C module against the generated spec header with cffi (API mode).

Ref: hostdrv/kmod/splitnic_spec.h (generated from spec/splitnic_spec/nic.py).

The driver's hot path (``hostdrv/splitnic/_hotpath_build.py``) and the
software NIC (``sim/splitnic_sim/_softnic_build.py``) are both C files that
include the spec header.  Their cdef is the header (as
:func:`splitnic_spec.generate.cdef` trims it) plus the block between
``cdef-begin`` and ``cdef-end`` in the C file, so no declaration is written
twice.  ``setup.py`` names the two build files in ``cffi_modules``.
"""

from __future__ import annotations

import re
from pathlib import Path

from .generate import REPO_ROOT, cdef

__all__ = ["SPEC_HEADER", "c_block", "spec_ffibuilder"]

#: The generated C header the C modules include.
SPEC_HEADER = REPO_ROOT / "hostdrv" / "kmod" / "splitnic_spec.h"


def c_block(source: Path) -> str:
    """The declarations between the ``cdef-begin`` and ``cdef-end`` markers of ``source``."""
    match = re.search(r"/\* cdef-begin.*?\*/(.*?)/\* cdef-end \*/", source.read_text(), re.S)
    if not match:
        raise RuntimeError(f"{source}: no cdef-begin/cdef-end block")
    return cdef(match.group(1))


def spec_ffibuilder(module: str, source: Path):
    """A ``cffi.FFI`` that compiles ``source`` as ``module``, with the spec header in its cdef."""
    import cffi  # only the build needs it
    builder = cffi.FFI()
    builder.cdef(cdef(SPEC_HEADER.read_text()))
    builder.cdef(c_block(source))
    builder.set_source(module, f'#include "{source.name}"',
                       include_dirs=[str(SPEC_HEADER.parent), str(source.parent)],
                       depends=[str(source), str(SPEC_HEADER)],
                       extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"])
    return builder


def compile_here(builder, source: Path) -> Path:
    """Compile ``builder`` by hand (outside pip) and put the module next to ``source``."""
    import shutil
    out = Path(builder.compile(tmpdir=str(REPO_ROOT / "build" / "cffi")))
    return Path(shutil.copy(out, source.parent / out.name))
