"""splitnic: the user-space half of the split NIC driver.

``splitnic.open("sim:/path/sock")`` (or ``"mmio:/path/file"``) attaches a NIC
and returns a :class:`splitnic.nic.Nic`.
"""

__version__ = "0.1.0"


def open(link: str):  # noqa: A001 - splitnic.open(link) reads naturally
    """Attach the NIC named by ``link`` and probe it; returns a :class:`splitnic.nic.Nic`."""
    from .nic import open as _open
    return _open(link)


__all__ = ["open", "__version__"]
