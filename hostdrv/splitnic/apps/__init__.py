"""Fast-path applications that ship with splitnic, and what serves an application by name.

Ref: hostdrv/splitnic/fastpath.py (the API they are written against).

* :mod:`.udp_echo` — answers UDP datagrams on its queue, zero-copy on receive.
* :mod:`.counter` — counts what reaches its queue, per protocol and port.

Each is a callable ``handler(app) -> work`` for :meth:`FastPath.serve`, and
each runs on its own too: ``python -m splitnic.apps.udp_echo --link ...``.
"""

from __future__ import annotations

from ..fastpath import App, BatchHandler, FastPath, load_handler
from .counter import Counter
from .udp_echo import UdpEcho

__all__ = ["Counter", "UdpEcho", "serve_builtin"]

#: Application names that get a built-in handler; any other name gets a Counter.
BUILTIN = {"echo": UdpEcho}


def serve_builtin(fast: FastPath, name: str) -> App:
    """Serve application ``name``: ``package.module:handler`` with that ``handler(batch, app)``
    (:func:`splitnic.fastpath.load_handler`), ``echo`` with its built-in handler, any other name
    with a :class:`Counter`."""
    if ":" in name:
        return fast.serve(name, BatchHandler(load_handler(name)))
    return fast.serve(name, BUILTIN.get(name, Counter)())
