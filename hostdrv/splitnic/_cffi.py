"""The compiled hot path (``splitnic._hotpath_cffi``), with a clear error when it is missing.

Ref: hostdrv/splitnic/_hotpath.c.
"""

from __future__ import annotations

from .errors import SplitnicError

try:
    from ._hotpath_cffi import ffi, lib
except ImportError as err:  # pragma: no cover - depends on the install
    raise SplitnicError(f"the driver's C hot path is not built ({err}): run `.venv/bin/pip install -e .` "
                        "or `.venv/bin/python hostdrv/splitnic/_hotpath_build.py`") from None

__all__ = ["ffi", "lib"]
