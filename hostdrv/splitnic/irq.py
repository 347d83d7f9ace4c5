"""The NIC's interrupt as a file descriptor the driver's event loop waits on.

Ref: docs/registers.md, IRQ_STATUS (write 1 to clear), IRQ_MASK, IRQ_COALESCE;
gateware/splitnic_gateware/csr.py (a level line: it rises when
``IRQ_STATUS & IRQ_MASK`` becomes non-zero, at most once per IRQ_COALESCE
cycles, and stays up until the causes are cleared); Linux
Documentation/networking/napi.rst (interrupt once, poll while there is work,
re-arm only when the queues are empty).

How the line reaches the process depends on the link (``Link.irq``): the
``sim`` link and the software NIC deliver one byte on a second socket per
rise of the line; ``etherbone`` has no interrupt path to the host (the loop
polls it at a bounded rate instead).

The discipline, NAPI's: the mask stays set; the line rises once and stays up
while the driver drains its queues (no further events, however busy); when
the queues are empty the driver writes IRQ_STATUS to clear every cause
(:meth:`NicInterrupt.arm`), looks at its queues once more, and sleeps until
the next rise.  A cause that lands between the clear and that last look
raises the line again, so nothing is missed.
"""

from __future__ import annotations

import logging
import os
import socket

from splitnic_spec import CSR_MAP, INDEX_MASK

from .errors import SplitnicError

__all__ = ["NicInterrupt", "ForwardedCauses", "rx_cause", "DEFAULT_COALESCE_USECS"]

log = logging.getLogger(__name__)

_STATUS = CSR_MAP.register("IRQ_STATUS")
_MASK = CSR_MAP.register("IRQ_MASK")
_COALESCE = CSR_MAP.register("IRQ_COALESCE")
_RXQ = CSR_MAP.array("RXQ")
_RX, _TX, _LINK = (_STATUS.field(n) for n in ("RX", "TX", "LINK"))

#: Default hold-off between two rises of the line (like ethtool's rx-usecs): at most
#: 20 000 interrupts a second; the first frame after an idle spell is not delayed.
DEFAULT_COALESCE_USECS = 50


class NicInterrupt:
    """The interrupt of ``nic`` (whose link has one): enable causes, clear them, wait on :meth:`fileno`."""

    def __init__(self, nic, coalesce_usecs: int = DEFAULT_COALESCE_USECS) -> None:
        if nic.link.irq is None:
            raise SplitnicError(f"{nic.link.description}: the link delivers no interrupt")
        self.nic = nic
        self.bus = nic.bus
        self._sock: socket.socket = nic.link.irq
        self._mask = -1
        self.tx_queues, self.link = 0, True   # what the last enable() asked for
        self.events = 0          #: rises of the line seen
        self.set_coalesce(coalesce_usecs)

    def fileno(self) -> int:
        """The descriptor that becomes readable when the line rises."""
        return self._sock.fileno()

    def set_coalesce(self, usecs: int) -> None:
        """Hold the line down for ``usecs`` µs after each rise (IRQ_COALESCE; 0: no hold-off)."""
        if usecs < 0:
            raise ValueError(f"interrupt coalescing must be 0 or more µs, not {usecs}")
        cycles = usecs * (self.nic.clock_hz or 125_000_000) // 1_000_000
        limit = _COALESCE.field("CYCLES").mask
        self.coalesce_usecs = usecs
        self.bus.write32(_COALESCE.offset, min(cycles, limit))

    def enable(self, rx_queues: int = 0, tx_queues: int = 0, link: bool = True) -> None:
        """Set IRQ_MASK: bit q of ``rx_queues``/``tx_queues`` for queue q, and link changes (written when changed)."""
        self.tx_queues, self.link = tx_queues, link
        mask = _RX.put(rx_queues & 0xFF) | _TX.put(tx_queues & 0xFF) | (_LINK.put(1) if link else 0)
        if mask != self._mask:
            self.bus.write32(_MASK.offset, mask)
            self._mask = mask

    def restarted(self) -> None:
        """The NIC was reset under the driver (its board was reset): write the coalescing again and
        forget the mask written (the next :meth:`enable` writes it)."""
        self.set_coalesce(self.coalesce_usecs)
        self._mask = -1

    def arm(self, causes: int = 0xFFFFFFFF) -> None:
        """Clear the pending ``causes`` (IRQ_STATUS bits; default all) so that the next one raises the
        line (call when the queues are empty).

        The write is read back before returning: a posted write (the sim link's, a PCIe
        BAR's) could otherwise land after the driver's last look at its queues and clear the
        cause of a frame that arrived in between, which would then wait for the next one.
        A read is not passed by an earlier posted write, so afterwards the clear is done.
        The causes of queues granted to other processes are left alone: their owner
        clears them (:class:`ForwardedCauses`).
        """
        self.bus.write32(_STATUS.offset, causes & 0xFFFFFFFF)
        self.bus.read32(_STATUS.offset)

    def status(self) -> int:
        """IRQ_STATUS: the causes pending (one register read)."""
        return self.bus.read32(_STATUS.offset)

    def take(self) -> bool:
        """After a wake-up: swallow the rises signalled so far; returns whether there was one."""
        got = False
        while True:
            try:
                data = self._sock.recv(256)
            except BlockingIOError:
                return got
            if not data:
                raise SplitnicError(f"{self.nic.link.description}: the interrupt connection closed "
                                    "(the simulator went away?)")
            self.events += len(data)
            got = True

    def link_changed(self, status: int | None = None) -> bool:
        """Whether IRQ_STATUS says the link changed (one register read)."""
        return bool(_LINK.get(self.status() if status is None else status))

    def disable(self) -> None:
        """Mask every cause."""
        self.bus.write32(_MASK.offset, 0)
        self._mask = 0


#: A bit of IRQ_STATUS no cause uses (see ForwardedCauses.arm).
_UNUSED_BIT = 1 << 31
assert not any(f.mask & _UNUSED_BIT for f in _STATUS.fields)


def rx_cause(queue: int) -> int:
    """The IRQ_STATUS (and IRQ_MASK) bit of RX queue ``queue``."""
    return _RX.put(1 << queue)


class ForwardedCauses:
    """RX queues whose interrupt belongs to another process: each cause goes to that process's eventfd.

    The line is one, and the primary (``splitnic up``) takes it.  A queue granted
    to an application (:mod:`splitnic.app_server`) is *armed* when the
    application asked to sleep: its cause is then in IRQ_MASK.  When the
    primary sees it in IRQ_STATUS it writes the application's eventfd and masks
    the cause again (:meth:`forward`), so a busy application costs the primary
    no further wake-ups.  The application drains its queue and, when it finds
    it empty, asks to be armed again (:meth:`arm`), telling the first
    completion it has not taken: its cause is cleared, then unmasked, and if
    the queue's CPL register has moved past that index meanwhile (a frame
    landed between the application's last look and the clear) it is woken at
    once: NAPI's discipline across two processes, without a round trip.  The
    primary clears only its own causes when it re-arms (:meth:`own_causes`).

    The software NIC's register window is plain memory: it sees a driver's
    write to IRQ_STATUS only as a value different from the one it stored, and
    of two writes between two of its passes only the second.  So the primary's
    own clear repeats the granted causes cleared since its last one, and looks
    at those queues' CPL registers once more afterwards (:meth:`rearmed`): on
    any NIC, a frame that landed in between wakes its application.
    """

    def __init__(self) -> None:
        self.eventfds: dict[int, int] = {}   #: RX queue -> the application's eventfd
        self.armed: set[int] = set()          #: queues whose cause is unmasked
        self.forwarded = 0                    #: causes handed to applications
        self._next: dict[int, int | None] = {}  # armed queue -> the first completion its application has not taken
        self._cleared = 0                     # granted causes cleared since the primary's own last clear

    def add(self, queue: int, eventfd: int) -> None:
        """Forward RX queue ``queue``'s cause to ``eventfd`` (not armed yet)."""
        self.eventfds[queue] = eventfd
        self.armed.discard(queue)

    def remove(self, queue: int) -> None:
        """Stop forwarding ``queue``'s cause (its application left)."""
        self.eventfds.pop(queue, None)
        self.armed.discard(queue)
        self._next.pop(queue, None)
        self._cleared &= ~rx_cause(queue)

    def rx_mask(self, all_queues: int) -> int:
        """The RX causes to unmask: the primary's own queues and the armed granted ones."""
        granted = sum(1 << q for q in self.eventfds)
        return (all_queues & ~granted) | sum(1 << q for q in self.armed)

    def own_causes(self) -> int:
        """The IRQ_STATUS bits the primary clears when it re-arms: every cause but the granted queues',
        and again those granted ones cleared since its last clear (see the class doc)."""
        return (0xFFFFFFFF & ~sum(rx_cause(q) for q in self.eventfds)) | self._cleared

    def rearmed(self, irq: NicInterrupt) -> None:
        """After the primary's own clear: wake the applications whose queue got a frame meanwhile."""
        cleared, self._cleared = self._cleared, 0
        for q in list(self.armed):
            if cleared & rx_cause(q):
                self._check(irq, q)

    def forward(self, status: int) -> int:
        """Signal the applications whose armed cause ``status`` holds, and disarm them; returns how many."""
        woke = 0
        for q in [q for q in self.armed if status & rx_cause(q)]:
            self.armed.discard(q)
            try:
                os.eventfd_write(self.eventfds[q], 1)
            except OSError as err:   # its application is gone; the hangup reclaims it
                log.debug("RX queue %d: eventfd: %s", q, err)
            woke += 1
        self.forwarded += woke
        return woke

    def arm(self, irq: NicInterrupt, queue: int, next_cpl: int | None = None) -> None:
        """Clear ``queue``'s pending cause, unmask it, and wake its application at once if the queue's
        CPL register is past ``next_cpl`` (None: wake it, it does not say where it is)."""
        # With a reserved bit, which the NIC never sets and ignores when written: the software NIC
        # tells a write from its own value only by the value, which the cause alone could equal.
        irq.arm(rx_cause(queue) | _UNUSED_BIT)
        self.armed.add(queue)
        self._next[queue] = next_cpl
        self._cleared |= rx_cause(queue)
        irq.enable(rx_queues=self.rx_mask((1 << irq.nic.num_rx_queues) - 1),
                   tx_queues=irq.tx_queues, link=irq.link)
        self._check(irq, queue)

    def _check(self, irq: NicInterrupt, queue: int) -> None:
        next_cpl = self._next.get(queue)
        if next_cpl is None or irq.bus.read32(_RXQ.offset(queue, "CPL")) & INDEX_MASK != next_cpl:
            self.forward(rx_cause(queue))
