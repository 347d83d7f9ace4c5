"""splitnic: the user-space half of the split NIC driver."""

__version__ = "0.1.0"
