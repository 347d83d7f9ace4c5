"""tests/vm: the stub module in a QEMU guest.

``guest_tests/`` holds the tests that run *inside* the guest (they need
/dev/splitnic); on the host they are not collected: the host tests in this
folder boot the guest, run them there and report each one.
"""

from __future__ import annotations

import os

collect_ignore = [] if os.environ.get("SPLITNIC_GUEST") == "1" else ["guest_tests"]
