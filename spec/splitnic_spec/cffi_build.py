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
from typing import Sequence

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


def spec_ffibuilder(module: str, source: Path, *, more_sources: Sequence[Path] = (),
                    headers: Sequence[Path] = ()):
    """A ``cffi.FFI`` that compiles ``source`` as ``module``, with the spec header in its cdef.

    ``more_sources``: C files compiled into the same module after ``source``
    (their cdef blocks join the cdef), so they share its types and static
    functions.  ``headers``: more generated headers they include
    (e.g. hostdrv/splitnic/hostlink_spec.h); only their folders join the
    include path, not the cdef.
    """
    import cffi  # only the build needs it
    builder = cffi.FFI()
    builder.cdef(cdef(SPEC_HEADER.read_text()))
    for c_file in (source, *more_sources):
        builder.cdef(c_block(c_file))
    include_dirs = [str(SPEC_HEADER.parent), str(source.parent)]
    for path in (*more_sources, *headers):
        if str(path.parent) not in include_dirs:
            include_dirs.append(str(path.parent))
    builder.set_source(module, "\n".join(f'#include "{c_file.name}"' for c_file in (source, *more_sources)),
                       include_dirs=include_dirs,
                       depends=[str(source), *map(str, more_sources), str(SPEC_HEADER), *map(str, headers)],
                       extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"])
    return builder


def compile_here(builder, source: Path) -> Path:
    """Compile ``builder`` by hand (outside pip) and put the module next to ``source``."""
    import shutil
    out = Path(builder.compile(tmpdir=str(REPO_ROOT / "build" / "cffi")))
    return Path(shutil.copy(out, source.parent / out.name))
