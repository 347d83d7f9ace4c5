"""The MAC side of the NIC: GMII framing, FCS, address filter, steering.

Ref: IEEE Std 802.3-2018 clauses 3, 4 and 35.  Connects to the host side
through :mod:`splitnic_gateware.interfaces`.
"""

from .rx import MacRx
from .tx import MacTx

__all__ = ["MacRx", "MacTx"]
