"""Settings of the export model (the mastering chain and codec a user's edit went through).

Every threshold the chain estimate uses is a field here, and the whole config is written into each
decision list's ``meta["export"]["config"]``, so a label can always be traced to the numbers that
made it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExportConfig:
    """How the mastering chain (global gain, EQ curve, codec delay) of an edit is estimated."""

    enabled: bool = True
    """[flag] estimate the chain at all (off: the raw track and the edit are matched as read,
    the labeller as it was before the export model)."""
    n_fft: int = 2048
    """[samples] STFT window at the raw track's rate (46 ms at 44.1 kHz)."""
    hop_length: int = 1024
    """[samples] STFT hop at the raw track's rate."""
    n_bands: int = 32
    """[bands] log-spaced bands of the EQ curve between ``f_min_hz`` and the Nyquist rate."""
    f_min_hz: float = 40.0
    """[Hz] lowest band edge."""
    max_edit_frames: int = 1500
    """[frames] edit frames used to estimate the chain (evenly spread; enough for a median)."""
    context_frames: int = 2
    """[frames] neighbours on each side stacked into a frame's matching vector (specificity)."""
    keep_best: float = 0.5
    """[fraction] of edit frames, the best-matched, whose level differences enter the median."""
    loud_db: float = 50.0
    """[dB] bands this far below a frame's loudest band are left out of its level differences
    (codec and quantisation noise, not the chain)."""
    floor_db: float = -40.0
    """[dB] the EQ curve is not cut deeper than this (a low-pass band that is just gone)."""
    exact_copy_db: float = -60.0
    """[dB] a pair whose best copies match the raw this exactly (before any chain) is an edit
    straight from a renderer: no chain is applied (float rounding leaves about -120 dB, a
    16-bit WAV about -90, any lossy codec above -40)."""
    min_chain_db: float = 1.0
    """[dB] a chain whose curve stays within this of 0 dB everywhere is not applied (an edit
    straight out of a renderer: the raw track is then used sample for sample)."""
    fir_taps: int = 1023
    """[taps] odd length of the linear-phase FIR that applies the curve to the raw track."""
    max_delay_ms: float = 60.0
    """[ms] largest codec delay looked for at the start of the edit (LAME: 25 ms at 44.1 kHz)."""
    delay_probe_sec: float = 3.0
    """[s] length of the edit's opening cross-correlated with the raw's to find the delay."""
    delay_min_corr: float = 0.6
    """[correlation] normalised peak the delay estimate needs (else no delay is assumed:
    an edit that does not open on the raw's opening)."""
    n_probes: int = 12
    """[windows] edit windows whose best raw copy measures the pair's copy floor."""
    probe_sec: float = 0.4
    """[s] length of each probe window."""
    unrelated_floor_db: float = -3.0
    """[dB] a pair whose closest copies of raw audio leave a residual within this of the edit's
    own level is not made of its raw track (unrelated audio, or the wrong file) and is refused;
    a lossy export leaves about -20 dB or lower, the wrong file about 0 dB."""
    floor_margin_db: float = 8.0
    """[dB] a beat counts as changed only this far above the pair's copy floor (and never below
    the effect detector's own threshold): the spread of the codec residual from beat to beat."""
    keep_margin_db: float = 3.0
    """[dB] on a pair whose copy floor raised the thresholds, an effect must explain a segment
    this much better than 'unchanged' (a codec's residual lets a wrong EQ win by a dB or two)."""
