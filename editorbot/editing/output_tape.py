"""The renderer's output so far: the recent samples in memory, the older ones handed on.

The renderer (:mod:`editorbot.editing.render`) only ever touches the end of its output: a fade
rewrites the last ``H`` samples before a seam, and REPEAT_PREV copies at most the last phrase of
output beats. So it writes into a :class:`OutputTape`, which keeps the samples from ``base`` on
and passes everything older, in order and once, to a sink: a preallocated array (the in-memory
render) or an open sound file (the streaming render). Both sinks receive the same samples,
because the arithmetic on the tape is the same.

Shape:
    samples: [shape=(C, n)] float32.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Sink = Callable[[np.ndarray], None]
"""Receives the next [shape=(C, n)] float32 output samples (it must copy them to keep them)."""

_MIN_FLUSH = 1 << 16
"""[samples] fewest samples handed to the sink at once (1.5 s at 44.1 kHz): fewer, larger writes."""


class OutputTape:
    """Output samples [base, end) in memory; samples before ``base`` are in the sink.

    Args:
        n_channels: C.
        sink: where samples go when they leave the tape.
    """

    def __init__(self, n_channels: int, sink: Sink):
        self._buf = np.empty((n_channels, 0), dtype=np.float32)
        self._sink = sink
        self.base = 0
        """[samples] first output sample still held."""
        self.end = 0
        """[samples] one past the last output sample written."""

    def window(self, start: int, stop: int) -> np.ndarray:
        """A writable view of output samples [start, stop), growing the tape to ``stop``.

        Raises:
            AssertionError: ``start`` is before ``base`` (already handed on).
        """
        assert self.base <= start <= stop, (self.base, start, stop)
        if stop - self.base > self._buf.shape[1]:
            grown = np.empty((self._buf.shape[0], max(stop - self.base, 2 * self._buf.shape[1])),
                             dtype=np.float32)  # fmt: skip
            grown[:, : self.end - self.base] = self._buf[:, : self.end - self.base]
            self._buf = grown
        self.end = max(self.end, stop)
        return self._buf[:, start - self.base : stop - self.base]

    def release(self, before: int, *, force: bool = False) -> None:
        """Hand the samples before ``before`` to the sink (if at least :data:`_MIN_FLUSH` of
        them, or ``force``); they can no longer be read or rewritten."""
        n = min(before, self.end) - self.base
        if n <= 0 or (n < _MIN_FLUSH and not force):
            return
        held = self.end - self.base
        self._sink(self._buf[:, :n])
        self._buf[:, : held - n] = self._buf[:, n:held]  # numpy copies overlapping ranges safely
        self.base += n


def array_sink(out: np.ndarray) -> Sink:
    """A sink that fills ``out`` [shape=(C, L)] from its start."""
    pos = 0

    def write(block: np.ndarray) -> None:
        nonlocal pos
        out[:, pos : pos + block.shape[1]] = block
        pos += block.shape[1]

    return write
