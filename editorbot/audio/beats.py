"""The beat grid: beats, tempo, downbeat phase, bars of 4 beats and phrases of 4 bars.

Beats come from a log-mel onset envelope and the dynamic-programming tracker of Ellis (2007,
https://www.ee.columbia.edu/~dpwe/pubs/Ellis07-beattrack.pdf), in numpy (:mod:`.beat_tracker`),
with the global tempo estimated under a flat prior over ``[min_bpm, max_bpm]`` (the usual
log-normal prior around 120 BPM turns 180 BPM into 90 and 70 BPM into 140: the classic octave
errors). The estimate's metrical level is then chosen among 1/2, 2/3, 1, 3/2 and 2 times it by
a pulse-train comb on the onset autocorrelation (:func:`metrical_level`), a pulse whose midpoints
carry the kick and bass as hard as its beats is re-tracked at twice the tempo
(:func:`_bass_between`), a backbeat check doubles a half-time pulse, and each beat is snapped
to the attack on a 1.45 ms energy envelope (:func:`_snap_to_rise`), which removes the onset
envelope's framing lag. The tracked beats are
then made into a grid that covers the whole track: gaps are filled at the local beat period and
the edges are extended, so every sample belongs to exactly one beat.

Beat ``i`` covers ``[beat_times[i], beat_times[i + 1])``; the first beat starts at 0 s and the
last one runs to the end of the track. The downbeat phase is the phase (0..3) whose beats carry
the most low-frequency onset energy (kick drums and bass notes mark the bar).

Shape:
    y: [shape=(L,)] mono analysis signal.
    beat_times: [shape=(n_beats,)] float64 seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from editorbot.audio import beat_tracker, spectral
from editorbot.audio.filterbanks import mel_frequencies
from editorbot.errors import AudioLoadError, ParameterError

logger = logging.getLogger(__name__)

BEAT_VERSION = "4"
"""Bumped whenever the tracker's output changes; part of the feature-cache key (2: metrical-level
choice and beats snapped to the attack, no longer 20 ms late; 3: a pulse whose midpoints carry
the kick and bass as hard as its beats is doubled, :func:`_bass_between`; 4: the grid's tempo
is the slope over its own beats, :func:`tempo_from_beats`, the same at training and ``edit``)."""
BEATS_PER_BAR = 4
"""[beats] the grid is 4/4: bars of 4 beats."""
BARS_PER_PHRASE = 4
"""[bars] a phrase is 4 bars = 16 beats."""


@dataclass(frozen=True)
class BeatConfig:
    """How the beat grid is tracked."""

    hop_length: int = 256
    """[samples] onset-envelope hop at the analysis rate (256 at 22,050 Hz = 11.6 ms)."""
    n_mels: int = 64
    """[bins] mel bands of the onset envelope."""
    min_bpm: float = 70.0
    """[beats/min] slowest tempo the tracker may return."""
    max_bpm: float = 180.0
    """[beats/min] fastest tempo the tracker may return."""
    tightness: float = 100.0
    """[1] how strictly beats follow the tempo (the DP's weight on log(interval/period)^2)."""
    downbeat_fmax: float = 150.0
    """[Hz] top of the band whose onsets mark downbeats (kick, bass)."""
    min_beats: int = 8
    """[beats] fewest beats a usable grid has (two bars)."""
    snap_length: int = 128
    """[samples] frame of the fine energy envelope beats snap to (5.8 ms at 22,050 Hz)."""
    snap_hop_length: int = 32
    """[samples] hop of that envelope (1.45 ms at 22,050 Hz): the beat times' resolution."""
    min_onset_db: float = 1.0
    """[dB] weakest onset-envelope peak (mean rise over mel bands) that makes a track rhythmic;
    a steady drone peaks near 0.1 dB, a click or drum hit near 40 dB."""

    def __post_init__(self) -> None:
        if not 0 < self.min_bpm < self.max_bpm:
            raise ParameterError(
                f"BeatConfig: need 0 < min_bpm < max_bpm, got {self.min_bpm}, {self.max_bpm}"
            )


@dataclass(frozen=True, eq=False)
class BeatGrid:
    """A 4/4 beat grid covering a whole track.

    Attributes:
        beat_times: [s] float64 beat starts, shape (n_beats,); ``beat_times[0] == 0``.
        tempo_bpm: [beats/min] global tempo.
        downbeat_phase: [beats] 0..3, index of the first downbeat among the first 4 beats.
        duration_sec: [s] track length; the last beat ends here.
    """

    beat_times: np.ndarray
    tempo_bpm: float
    downbeat_phase: int
    duration_sec: float

    @property
    def n_beats(self) -> int:
        return int(self.beat_times.shape[0])

    def beat_samples(self, sr: int) -> np.ndarray:
        """Beat starts as int64 sample positions at rate ``sr`` (the one seconds->samples place)."""
        return np.round(self.beat_times * sr).astype(np.int64)

    def bar_starts(self) -> np.ndarray:
        """Indices of the beats that start bars (downbeats), int64."""
        return np.arange(self.downbeat_phase, self.n_beats, BEATS_PER_BAR, dtype=np.int64)

    def phrase_starts(self) -> np.ndarray:
        """Indices of the beats that start phrases of 4 bars, int64."""
        return self.bar_starts()[::BARS_PER_PHRASE]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON/Parquet-metadata safe)."""
        return {
            "beat_times": [float(t) for t in self.beat_times],
            "tempo_bpm": float(self.tempo_bpm),
            "downbeat_phase": int(self.downbeat_phase),
            "duration_sec": float(self.duration_sec),
        }

    @classmethod
    def from_beat_times(
        cls, beat_times: np.ndarray, *, downbeat_phase: int, duration_sec: float
    ) -> BeatGrid:
        """A grid from its beat starts [s], the tempo by :func:`tempo_from_beats`."""
        beat_times = np.asarray(beat_times, dtype=np.float64)
        return cls(beat_times, tempo_from_beats(beat_times), int(downbeat_phase), duration_sec)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BeatGrid:
        """Inverse of :meth:`to_dict`."""
        return cls(
            beat_times=np.asarray(data["beat_times"], dtype=np.float64),
            tempo_bpm=float(data["tempo_bpm"]),
            downbeat_phase=int(data["downbeat_phase"]),
            duration_sec=float(data["duration_sec"]),
        )


def track_beats(
    y: np.ndarray,
    *,
    sr: int,
    config: BeatConfig | None = None,
    name: str = "<audio>",
    bpm: float | None = None,
) -> BeatGrid:
    """Track the beat grid of a mono signal.

    Args:
        y: [shape=(L,)] mono analysis signal.
        sr: [Hz] its rate.
        config: tracker settings; defaults to ``BeatConfig()``.
        name: the file the signal came from, named in errors.
        bpm: [beats/min] track at this tempo instead of estimating one (the metrical level
            was decided elsewhere, e.g. by what an edit of the track does).

    Returns:
        A grid covering the whole signal.

    Raises:
        AudioLoadError: no beat found, or fewer than ``config.min_beats`` beats.
    """
    config = config or BeatConfig()
    (L,) = y.shape
    duration_sec = L / sr
    env = onset_envelopes(y, sr=sr, config=config)
    if bpm is None:
        tracked = _track(env, sr=sr, config=config)
    else:
        tracked = _dp_beats(env, bpm, sr=sr, config=config)
    if len(tracked) < 4:
        raise AudioLoadError(
            f"{name}: no steady beat found in {duration_sec:.1f} s of audio (too few rhythmic "
            "onsets); use a track with a beat"
        )
    if bpm is None:
        tracked = _fix_octave(tracked, env.accent, config=config, frames_per_sec=env.frames_per_sec)
    tracked = _snap_to_rise(tracked, y, sr=sr, config=config)
    beat_times = covering_grid(tracked, duration_sec=duration_sec)
    tempo_bpm = tempo_from_beats(beat_times)
    n_beats = len(beat_times)
    if n_beats < config.min_beats:
        raise AudioLoadError(
            f"{name}: {duration_sec:.1f} s of audio has {n_beats} beats at {tempo_bpm:.0f} BPM, "
            f"need at least {config.min_beats} beats (about "
            f"{config.min_beats * 60 / tempo_bpm:.1f} s); use a longer track"
        )
    low = _peaks_at(env.accent_low, beat_times, frames_per_sec=env.frames_per_sec)
    phase = int(np.argmax([low[p::BEATS_PER_BAR].mean() for p in range(BEATS_PER_BAR)]))
    logger.debug("%s: %d beats at %.1f BPM, downbeat phase %d", name, n_beats, tempo_bpm, phase)
    return BeatGrid(beat_times, tempo_bpm, phase, duration_sec)


@dataclass(frozen=True, eq=False)
class OnsetEnvelopes:
    """Frame-rate envelopes of one track, each [shape=(T,)]."""

    onset: np.ndarray
    """[dB] log-mel spectral flux (mean rise over bands): what the tracker follows."""
    accent: np.ndarray
    """[1] linear-magnitude mel flux: loud events dominate (octave check)."""
    accent_low: np.ndarray
    """[1] linear-magnitude flux below ``downbeat_fmax`` (kick, bass: the downbeat)."""
    frames_per_sec: float
    """[frames/s] envelope rate."""


def onset_envelopes(y: np.ndarray, *, sr: int, config: BeatConfig) -> OnsetEnvelopes:
    """All envelopes from one mel spectrogram."""
    S = spectral.mel_power(
        y, sr=sr, n_fft=4 * config.hop_length, hop_length=config.hop_length, n_mels=config.n_mels
    )
    mel_hz = mel_frequencies(config.n_mels, fmax=sr / 2)
    n_low = max(1, int(np.searchsorted(mel_hz, config.downbeat_fmax)))
    # S's frames are centred, so the flux needs no further shift (a shift would be a lag).
    onset = spectral.onset_strength(spectral.power_to_db(S, ref=None))
    magnitude = np.sqrt(S)
    flux = np.maximum(0.0, np.diff(magnitude, axis=1, prepend=magnitude[:, :1]))
    return OnsetEnvelopes(
        onset=onset,
        accent=flux.sum(axis=0),
        accent_low=flux[:n_low].sum(axis=0),
        frames_per_sec=sr / config.hop_length,  # [samples/s] / [samples/frame]
    )


def _track(env: OnsetEnvelopes, *, sr: int, config: BeatConfig) -> np.ndarray:
    """Tempo under a flat prior, its metrical level by :func:`metrical_level` and
    :func:`_bass_between`, then DP beats.

    Returns:
        [s] beat times, shape (n,).
    """
    if float(env.onset.max()) < config.min_onset_db:
        return np.zeros(0)
    bpm = beat_tracker.tempo(
        env.onset, sr=sr, hop_length=config.hop_length, bpm_range=(config.min_bpm, config.max_bpm)
    )
    bpm = metrical_level(bpm, env, config=config)
    beats = _dp_beats(env, bpm, sr=sr, config=config)
    if 2 * bpm <= config.max_bpm * 1.01 and len(beats) >= 4:  # 1 %: the estimate's jitter
        between = _bass_between(beats, env)
        logger.debug("%.1f BPM: low band between beats / on beats %.2f", bpm, between)
        if between >= _LOW_BETWEEN:
            beats = _dp_beats(env, 2 * bpm, sr=sr, config=config)
    return beats


def _dp_beats(env: OnsetEnvelopes, bpm: float, *, sr: int, config: BeatConfig) -> np.ndarray:
    """[s] DP beats at ``bpm`` without their irregular edges, shape (n,)."""
    frames = beat_tracker.track(
        env.onset, sr=sr, hop_length=config.hop_length, bpm=bpm, tightness=config.tightness
    )  # weak beats at the edges are dropped; covering_grid re-extends the grid there
    beats = frames * config.hop_length / sr  # [frames] * [samples/frame] / [samples/s]
    return _trim_irregular_edges(beats)


def _bass_between(beats: np.ndarray, env: OnsetEnvelopes) -> float:
    """Median low-band (kick, bass) flux at the midpoints of ``beats`` over that at the beats.

    Kick and bass articulate the beat; hats, chords and arpeggios subdivide it. A pulse whose
    midpoints carry the low band about as hard as its beats (:data:`_LOW_BETWEEN`) is half the
    tempo: the typical case is a kick/snare song at 140-160 BPM whose onset autocorrelation
    (bar-level repetition at 2, 4, 6, 8 beats) makes the comb of :func:`metrical_level` prefer
    70-80 BPM with the beats on the snares. At the right level an 80 BPM song with eighth-note
    hats keeps its low band on the beats. The median, not the mean: sections without drums or
    bass (intros, breakdowns) and single loud hits must not decide.

    Why not a tempo prior: the demo songs play the same 16-step patterns at 80-160 BPM, so
    only absolute tempo tells an 81 BPM song (candidates 81 and 162) from a 156 BPM one (78
    and 156). A prior picks the lower of a pair (a, 2a) when centred below a * sqrt(2); getting
    both right needs a centre within 111-114 BPM, the generator's own geometric centre, and
    the usual 120 BPM centre doubles the 81 BPM songs.

    Returns:
        [1] the ratio; 0 when the low band is silent at the beats and midpoints alike, inf when
        it is silent at the beats only.
    """
    mids = 0.5 * (beats[:-1] + beats[1:])
    on = float(np.median(_peaks_at(env.accent_low, beats, frames_per_sec=env.frames_per_sec)))
    off = float(np.median(_peaks_at(env.accent_low, mids, frames_per_sec=env.frames_per_sec)))
    return off / on if on > 0 else (np.inf if off > 0 else 0.0)


_LOW_BETWEEN = 0.8
"""[1] :func:`_bass_between` ratio from which the midpoints are beats: "about as hard as the
beats", 20 % below parity for the kick's and bass's own level changes (the ratios measured on
half-tempo and right-level grids: benchmarks/RESULTS.md, "Beat grid")."""


_LEVELS = (0.5, 2 / 3, 1.0, 1.5, 2.0)
"""[1] tempo multiples tried against the estimate (octave and 3:2 errors)."""
_COMB_BEATS = 4
"""[beats] lags of the comb: 1..4 beat periods, i.e. up to one 4/4 bar."""


def metrical_level(bpm: float, env: OnsetEnvelopes, *, config: BeatConfig) -> float:
    """The multiple of ``bpm`` whose pulse train best matches the onsets' periodicity.

    Each candidate in ``[min_bpm, max_bpm]`` scores the mean autocorrelation of the onset
    envelope and of the low-band (kick, bass) flux at 1..4 beat periods (a pulse-train comb after
    Percival & Tzanetakis 2014, https://doi.org/10.1109/TASLP.2014.2348916). Doubling the
    tempo puts half the comb's teeth on off-beat lags; halving it moves them to long lags,
    where fewer frames overlap and the autocorrelation is lower, and 3:2 puts half on off-beats.
    """
    acfs = [_autocorrelation(env.onset), _autocorrelation(env.accent_low)]
    lo, hi = config.min_bpm * 0.97, config.max_bpm * 1.03  # 3 %: the estimate's own jitter
    candidates = [bpm * f for f in _LEVELS if lo <= bpm * f <= hi] or [bpm]
    scores = [_comb_score(acfs, env.frames_per_sec * 60.0 / c) for c in candidates]
    best = candidates[int(np.argmax(scores))]
    logger.debug("tempo %.1f BPM -> %.1f BPM (levels %s)", bpm, best, np.round(scores, 3))
    return best


def _autocorrelation(envelope: np.ndarray) -> np.ndarray:
    """Autocorrelation of a mean-removed envelope at lags 0..T-1, 1 at lag 0. (T,)."""
    r = beat_tracker.autocorrelation(envelope - envelope.mean())
    return r / max(float(r[0]), 1e-12)


def _comb_score(acfs: list[np.ndarray], period_frames: float) -> float:
    """Sum over ``acfs`` of their mean peak (±2 frames: tempo jitter) at 1..4 periods."""
    score = 0.0
    for r in acfs:
        (T,) = r.shape
        for k in range(1, _COMB_BEATS + 1):
            centre = round(k * period_frames)
            score += float(r[max(0, centre - 2) : min(T, centre + 3)].max(initial=0.0))
    return score / _COMB_BEATS


def tempo_from_beats(beats: np.ndarray) -> float:
    """[BPM] a grid's global tempo: the least-squares slope of beat time against beat index.

    The one tempo definition (the tracker, the labels' grids, training and ``edit`` all use it).
    Finer than one frame: a median interval is quantised to the hop (±1.4 BPM at 124 BPM).
    """
    period = float(np.polyfit(np.arange(len(beats)), beats, 1)[0])  # [s/beat]
    return 60.0 / period  # [s/min] / [s/beat]


def _trim_irregular_edges(beats: np.ndarray, *, tolerance: float = 0.1) -> np.ndarray:
    """Drop edge beats whose interval is off the median by more than ``tolerance`` (fraction).

    The DP squeezes the last (and first) beats against the envelope's ends; :func:`covering_grid`
    re-extends the grid there at the steady period instead.
    """
    if len(beats) < 4:
        return beats
    period = float(np.median(np.diff(beats)))
    start, stop = 0, len(beats)
    while stop - start > 4 and abs(beats[stop - 1] - beats[stop - 2] - period) > tolerance * period:
        stop -= 1
    while stop - start > 4 and abs(beats[start + 1] - beats[start] - period) > tolerance * period:
        start += 1
    return beats[start:stop]


def _fix_octave(
    beats: np.ndarray, accent: np.ndarray, *, config: BeatConfig, frames_per_sec: float
) -> np.ndarray:
    """Halve or double the tracked pulse where the loud events say it is an octave off.

    Every other beat much quieter than its neighbours (eighth-note hats tracked as beats) ->
    keep the loud half. A hit on nearly every midpoint, at least half as loud as a typical beat
    (a backbeat snare between tracked kicks) -> add the midpoints; syncopated parts hit only
    some midpoints, so the quartile, not the mean, decides. Either only if the new tempo stays
    within [min_bpm, max_bpm] (1 % slack: the fitted tempo's jitter).
    """
    bpm = 60.0 / float(np.median(np.diff(beats)))
    at_beats = _peaks_at(accent, beats, frames_per_sec=frames_per_sec)
    even, odd = float(at_beats[0::2].mean()), float(at_beats[1::2].mean())
    if min(even, odd) < _HALVE_BELOW * max(even, odd) and bpm / 2 >= config.min_bpm * 0.99:
        return beats[0::2] if even >= odd else beats[1::2]
    mids = 0.5 * (beats[:-1] + beats[1:])
    at_mids = _peaks_at(accent, mids, frames_per_sec=frames_per_sec)
    backbeat = float(np.percentile(at_mids, 25)) / max(float(np.median(at_beats)), 1e-12)
    if backbeat >= _DOUBLE_ABOVE and bpm * 2 <= config.max_bpm * 1.01:
        return np.sort(np.concatenate([beats, mids]))
    return beats


_HALVE_BELOW = 0.25
"""[1] alternate beats this much quieter (linear flux) than the others are off-beats."""
_DOUBLE_ABOVE = 0.5
"""[1] a lower-quartile midpoint this loud relative to the median beat is a beat too (drum
backbeats sit above it, syncopated songs below: benchmarks/RESULTS.md, "Beat grid")."""


def _snap_to_rise(beats: np.ndarray, y: np.ndarray, *, sr: int, config: BeatConfig) -> np.ndarray:
    """Move each beat to the steepest rise of the fine log-energy envelope within one hop.

    The tracker's beats sit on onset-envelope frames: quantised to ``hop_length`` and biased by
    the 4-hop analysis window, which sees an attack before its centre reaches it (clicks came
    out 13 ms early, the demo songs 4 ms). On frames of ``snap_length`` samples the log energy
    jumps in the first frame whose window holds the attack, i.e. whose centre is half a frame
    before it; hence the ``+ snap_length / 2`` (an impulse then lands within one fine hop).

    Returns:
        [s] snapped beat times, shape (n,), still increasing.
    """
    rms = beat_tracker.frame_rms(
        y, frame_length=config.snap_length, hop_length=config.snap_hop_length
    )
    log_e = np.log(rms + _SNAP_FLOOR)
    rise = np.diff(log_e, prepend=log_e[:1])
    (T,) = rise.shape
    fine_per_sec = sr / config.snap_hop_length  # [samples/s] / [samples/frame]
    radius = round(config.hop_length / config.snap_hop_length)  # one coarse hop, in fine frames
    centres = np.round(beats * fine_per_sec).astype(np.int64)
    idx = np.clip(centres[:, None] + np.arange(-radius, radius + 1)[None, :], 0, T - 1)
    best = idx[np.arange(len(centres)), rise[idx].argmax(axis=1)]
    snapped = best / fine_per_sec + config.snap_length / (2 * sr)
    return np.maximum.accumulate(snapped)  # two beats never swap (radius << any beat period)


_SNAP_FLOOR = 1e-5
"""[linear RMS] floor under the log energy (-100 dBFS): silence does not make rises."""


def _peaks_at(envelope: np.ndarray, times: np.ndarray, *, frames_per_sec: float) -> np.ndarray:
    """Max of ``envelope`` within ±50 ms of each time (tolerates frame rounding). (n,)."""
    (T,) = envelope.shape
    radius = max(1, round(0.05 * frames_per_sec))  # [s] * [frames/s]
    centres = np.round(times * frames_per_sec).astype(np.int64)
    idx = np.clip(centres[:, None] + np.arange(-radius, radius + 1)[None, :], 0, T - 1)
    return envelope[idx].max(axis=1)


def covering_grid(tracked: np.ndarray, *, duration_sec: float) -> np.ndarray:
    """Fill gaps and extend the edges at the beat period so the grid covers [0, duration).

    Beats are added at the edges wherever one would start more than ``EDGE_PERIODS`` of a period
    inside the track; a shorter sliver before the first beat joins it (the first beat moves to
    0 s), and the last beat runs to the end. Edge beats therefore last 0.25 to 1.25 periods.
    """
    ibis = np.diff(tracked)
    period = float(np.median(ibis))
    filled = [tracked[:1]]
    for start, ibi in zip(tracked[:-1], ibis, strict=True):
        n = max(1, round(ibi / period))  # a gap of n periods gets n - 1 new beats
        filled.append(start + ibi * np.arange(1, n + 1) / n)
    beats = np.concatenate(filled)
    n_before = max(0, int(np.ceil(beats[0] / period - EDGE_PERIODS)))
    n_after = max(0, int(np.ceil((duration_sec - beats[-1]) / period - EDGE_PERIODS)) - 1)
    head = beats[0] - period * np.arange(n_before, 0, -1)
    tail = beats[-1] + period * np.arange(1, n_after + 1)
    beats = np.concatenate([head, beats, tail])
    beats = beats[beats < duration_sec - EDGE_PERIODS * period]  # a last sliver joins its beat
    beats[0] = 0.0  # a beat extrapolated before 0 s starts at 0; a sliver joins the first beat
    keep = np.concatenate([[True], np.diff(beats) > EDGE_PERIODS * period])
    return beats[keep]


EDGE_PERIODS = 0.25
"""[periods] the shortest first or last beat (shorter slivers join their neighbour)."""
