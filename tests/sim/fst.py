"""Reading an FST waveform back in the tests: which signals it has and how they changed.

pywellen (a pinned test dependency) parses FST; this wraps the two questions the
tests ask of a trace, by full hierarchical name (``snic_nic.clk``).
"""

from __future__ import annotations

from pathlib import Path

import pywellen

__all__ = ["Trace"]


class Trace:
    """An FST file, opened for reading."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        wave = pywellen.Waveform(str(self.path))
        self._vars = {v.full_name: v for v in wave.all_vars()}
        unit = str(wave.timescale)
        #: Picoseconds per time unit of the file.
        self.ps_per_unit = {"1ps": 1, "1ns": 1000, "1fs": 1e-3}[unit]

    @property
    def names(self) -> set[str]:
        """Full names of every signal in the file."""
        return set(self._vars)

    def width(self, name: str) -> int:
        """Bits of signal ``name``."""
        return self._vars[name].bitwidth

    def find(self, suffix: str) -> list[str]:
        """Full names that end in ``suffix`` (``.mac_tx.gmii_tx_en``), whatever scope holds them."""
        return sorted(n for n in self._vars if n == suffix or n.endswith("." + suffix.lstrip(".")))

    def changes(self, name: str) -> list[tuple[int, int | str]]:
        """(time in ps, value) of every change of signal ``name``, the first being its initial value."""
        out: list[tuple[int, int | str]] = []
        # A Waveform streams each signal once: a fresh one per question.
        wave = pywellen.Waveform(str(self.path))
        var = next(v for v in wave.all_vars() if v.full_name == name)
        wave.stream_changes(lambda t, _sid, value: out.append((int(t * self.ps_per_unit), value)), [var])
        return out
