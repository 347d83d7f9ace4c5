"""cffi builder of the software NIC model (``splitnic_sim._softnic_cffi``).

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
ffibuilder = spec_ffibuilder("splitnic_sim._softnic_cffi", SOURCE)

if __name__ == "__main__":
    print(compile_here(ffibuilder, SOURCE))
