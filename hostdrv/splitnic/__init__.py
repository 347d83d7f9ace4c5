"""splitnic: the user-space half of the split NIC driver.

``splitnic.open("sim:/path/sock")`` (or ``"mmio:/path/file"``) attaches a NIC
and returns a :class:`splitnic.nic.Nic`; ``splitnic.attach("udp dport 9000",
name="kv")`` asks a running ``splitnic up`` for an RX and a TX queue of this
process's own (:mod:`splitnic.app_client`, docs/apps.md).
"""

__version__ = "0.1.0"


def open(link: str):  # noqa: A001 - splitnic.open(link) reads naturally
    """Attach the NIC named by ``link`` and probe it; returns a :class:`splitnic.nic.Nic`."""
    from .nic import open as _open
    return _open(link)


def attach(rules, name: str, **options):
    """Ask the running ``splitnic up`` for queues of this process's own; see :func:`splitnic.app_client.attach`."""
    from .app_client import attach as _attach
    return _attach(rules, name, **options)


__all__ = ["open", "attach", "__version__"]
