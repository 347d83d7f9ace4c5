"""cffi builder of the software NIC model and its host-link stand-in (``splitnic_sim._softnic_cffi``).

Ref: spec/splitnic_spec/cffi_build.py (how every spec-based C module is built).

``setup.py`` names this file in ``cffi_modules``; by hand::

    .venv/bin/python sim/splitnic_sim/_softnic_build.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "spec"))  # build isolation: splitnic_spec is plain Python

from splitnic_spec.cffi_build import compile_here, spec_ffibuilder  # noqa: E402

SOURCE = HERE / "softnic.c"
#: The board side of the eth host link drives the model's own struct, so it is compiled into the same module.
STANDIN = HERE / "hostlink_standin.c"
HOSTLINK_HEADER = HERE.parents[1] / "hostdrv" / "splitnic" / "hostlink_spec.h"
ffibuilder = spec_ffibuilder("splitnic_sim._softnic_cffi", SOURCE, more_sources=[STANDIN], headers=[HOSTLINK_HEADER])

if __name__ == "__main__":
    print(compile_here(ffibuilder, SOURCE))
