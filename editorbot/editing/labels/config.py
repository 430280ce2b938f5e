"""Settings of the export model (the mastering chain and codec a user's edit went through).

Every threshold the chain estimate uses is a field here, and the whole config is written into each
decision list's ``meta["export"]["config"]``, so a label can always be traced to the numbers that
made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    """[dB] a pair whose best-matched copy is this exact (before any chain) is an edit
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


@dataclass(frozen=True)
class PathConfig:
    """Costs of the frame path (:mod:`editorbot.editing.labels.path`), in units of the pair's
    contrast (random minus best frame distance), and the frames it runs on."""

    n_fft: int = 2048
    """[samples] STFT window at the analysis rate (93 ms at 22,050 Hz)."""
    hop_length: int = 512
    """[samples] STFT hop at the analysis rate (23 ms: a beat at 120 BPM is 21 frames)."""
    max_cells: float = 2.0e8
    """[edit frames x raw frames] above this the hop is doubled (a long pair's path memory)."""
    jump: float = 8.0
    """[units] leaving the raw track's order: worth it once about 8 frames (190 ms) would
    otherwise play the wrong raw audio, so a one-beat cut or loop (21 frames) is found and a
    slightly closer copy of repeated music elsewhere is not."""
    step: float = 0.2
    """[units] holding a raw frame or skipping one (a stretch's slope, two grids' phase)."""
    shifted: float = 0.02
    """[units] prior per frame against the shifted layer (the best of ten rolls matches noise
    a little better than one)."""
    unexplained: float = 0.3
    """[units above the best] cost per frame of the changed layer (a raw frame under an effect
    the features do not follow); true copies cost about 0.01-0.03, a pitch-shifted frame
    against a wrong raw frame that happens to share its chords 0.2 and more."""
    switch: float = 3.0
    """[units] moving between the plain and the changed layer in place (an effect boundary)."""
    changed_step: float = 0.1
    """[units] holding or skipping a raw frame in the changed layer (a speed change there is
    an effect, not a drift)."""
    chroma_weight: float = 1.0
    """[weight] chroma (pitch classes) in the frame distance."""
    mfcc_weight: float = 0.8
    """[weight] MFCC shape (c1-c12: timbre, level-invariant) in the frame distance."""
    n_mels: int = 40
    """[bands] mel bands of the level analysis and behind the MFCCs."""


@dataclass(frozen=True)
class ExplainConfig:
    """How the path's pieces become beats and effects (:mod:`editorbot.editing.labels.explain`);
    level thresholds are the larger of a floor and a multiple of the pair's own beat-to-beat
    spread of the level difference on untouched beats."""

    min_piece_beats: float = 0.25
    """[beats] runs of the path shorter than this play no beat (a crossfade's smear)."""
    min_coverage: float = 0.5
    """[fraction of a beat] a piece plays a raw beat if it covers at least this much of it."""
    gain_floor_db: float = 1.8
    """[dB] smallest gain read as GAIN (the action table's smallest is 3 dB)."""
    eq_floor_db: float = 1.8
    """[dB] smallest shelf offset (band level against the rest) read as EQ."""
    noise_sigmas: float = 4.0
    """[spreads] a level effect must exceed this many robust spreads of the pair's untouched
    beats (a codec's beat-to-beat residual)."""
    speed_tolerance: float = 0.06
    """[ratio] a beat whose raw/edit length ratio is within this of 1 is not a speed change
    (the table's smallest step is 5 %; a beat's count is off by up to a frame at each end)."""
    speed_beats: int = 5
    """[beats] running-median width of the per-beat length ratio."""
    pitch_gain: float = 0.15
    """[fraction] a pitch shift must lower the chroma distance of a piece by this share of the
    unshifted one."""
    fade_db: float = 9.0
    """[dB] a first (last) piece whose first (last) beat sits this far below its others, rising
    (falling) towards them, is a fade."""
    low_hz: float = 250.0
    """[Hz] bands below this are the low shelf's."""
    high_hz: float = 3000.0
    """[Hz] bands above this are the high shelf's."""
    mid_hz: tuple[float, float] = (500.0, 1500.0)
    """[Hz] the band range a shelf leaves alone (the reference of both shelves)."""


@dataclass(frozen=True)
class CalibrationConfig:
    """The map from a decision's evidence to the probability that it is right
    (:mod:`editorbot.editing.labels.calibration`): a logistic of the evidence columns
    ``calibration.FEATURES``. Fitted on the label suite's calibration split (11 exported
    real-music pairs, 1,055 beats, 2026-12-04: new excerpts of the dev tracks with fresh edits,
    never looked at while the labeller's costs were set; the dev pairs read 0.90 right against
    0.78 there, so a map fitted on them was over-confident) by
    ``benchmarks/calibrate_labels.py``; the figures, and its leave-one-pair-out reliability:
    benchmarks/RESULTS.md, the global labeller."""

    enabled: bool = True
    """[flag] map the evidence (off: confidence is the raw product match x share x
    reproduced, as before the map)."""
    weights: tuple[float, ...] = (0.169, 0.358, 0.0, 0.686, -0.807, -0.769)
    """[logit per unit of evidence] one per ``calibration.FEATURES`` column (quality, match,
    pair_match, log(1 + beats), keep, structure). On the calibration split the pair's mean match
    added nothing once the decision's own match and length were in: the fit holds it at 0
    (bounded below by 0, the map stays monotone in the match columns)."""
    bias: float = 0.248
    """[logit] the map's intercept."""
    pair_spread: float = 0.0
    """[logit] standard deviation of a pair-to-pair offset the evidence leaves unexplained; a
    confidence is the map averaged over it (0: the map as fitted). The calibration split's
    leave-one-pair-out offsets give 1.184, but averaged over that spread the map's >= 0.9 bin
    was right 0.636 of 55 beats in its cross-validation against 0.916 of 273 without (on the dev
    split 0.898 against 0.946, and 0.747 against 0.811 on the report split): off by default."""


@dataclass(frozen=True)
class GlobalConfig:
    """Settings of the global labeller (:func:`editorbot.editing.labels.labeller.label_global`)."""

    path: PathConfig = field(default_factory=PathConfig)
    """the frame path and its features."""
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    """beats and effects read off the path."""
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    """how a decision's evidence becomes its confidence."""
