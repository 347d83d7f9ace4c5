"""cffi builder of the driver's C hot path (``splitnic._hotpath_cffi``).

Ref: spec/splitnic_spec/cffi_build.py (how every spec-based C module is built).

``setup.py`` names this file in ``cffi_modules``, so ``pip install -e .``
compiles it; by hand::

    .venv/bin/python hostdrv/splitnic/_hotpath_build.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "spec"))  # build isolation: splitnic_spec is plain Python

from splitnic_spec.cffi_build import compile_here, spec_ffibuilder  # noqa: E402

SOURCE = HERE / "_hotpath.c"
ffibuilder = spec_ffibuilder("splitnic._hotpath_cffi", SOURCE)

if __name__ == "__main__":
    print(compile_here(ffibuilder, SOURCE))
