"""The export chain of one pair, estimated once before matching: codec delay, global gain and EQ.

A user's edit left a DAW through a mastering chain (peak normalisation: one global gain; maybe a
limiter or an EQ) and a lossy codec (its low-pass above 16-19 kHz, its start delay). Read beat by
beat, that chain looks like the editor's own decisions: a normalisation gain on every kept beat
reads as GAIN, the MP3 low-pass as EQ_HIGH. So the chain is estimated over the whole pair first
and put onto the raw track; what is left to explain is the editor's decisions.

Method: every edit frame (log band energies, ``n_bands`` log-spaced, with ``context_frames``
neighbours stacked and the frame's mean removed, so level does not matter) is matched to its most
similar raw frame; over the best-matched half, the per-band median of edit dB - raw dB is the
chain's curve (the editor's own GAIN/EQ decisions touch a minority of beats, so a median sees
through them); the spread around it is the pair's noise floor. The start delay is the lag of the
peak of the cross-correlation of the two openings.

Shape:
    y: [shape=(C, L)] samples at one rate; band spectra: [shape=(n_bands, T)] dB.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np

from editorbot.audio import spectral
from editorbot.editing.labels.config import ExportConfig


@dataclass(frozen=True)
class Chain:
    """The export chain of one pair."""

    delay_samples: int
    """[samples at the raw rate] codec delay removed from the edit's start."""
    band_hz: tuple[float, ...]
    """[Hz] centre of each band of the curve."""
    curve_db: tuple[float, ...]
    """[dB] edit level minus raw level per band (the global gain is its median)."""
    gain_db: float
    """[dB] the chain's global gain (median of the curve over bands below 8 kHz)."""
    noise_floor_db: float
    """[dB] median absolute spread of the per-frame level differences around the curve."""
    applied: bool
    """[flag] whether the curve was put on the raw track (see ``ExportConfig.min_chain_db``)."""
    probes: tuple[tuple[int, int], ...] = ()
    """[samples] (edit start, raw start) of the best-matched frames, for :func:`copy_floor_db`."""
    copy_floor_db: float = -120.0
    """[dB] residual of the edit's best copies of raw audio after the chain: what the codec,
    resampling and mastering leave on audio the editor did not touch (float rounding: -120)."""
    best_copy_db: float = -120.0
    """[dB] the residual of the single best-matched probe: below ``ExportConfig.exact_copy_db``
    the edit holds sample-exact copies somewhere, which no export through a codec leaves."""

    def meta(self, config: ExportConfig) -> dict:
        """JSON-ready description for a decision list's ``meta``."""
        d = asdict(self)
        d.pop("probes")
        d["curve_db"] = [round(x, 2) for x in self.curve_db]
        d["band_hz"] = [round(x, 1) for x in self.band_hz]
        return {**d, "config": asdict(config)}


def estimate_chain(
    y_raw: np.ndarray, y_edit: np.ndarray, *, sr: int, config: ExportConfig
) -> Chain:
    """The chain that turned raw audio into the edit's audio (mono mixes at one rate ``sr``).

    Args:
        y_raw: [shape=(L,)] the raw track.
        y_edit: [shape=(L',)] the edit, at the raw track's rate.
        sr: [Hz] their rate.
        config: settings.
    """
    delay = codec_delay(y_raw, y_edit, sr=sr, config=config)
    y_edit = y_edit[delay:]
    centres, R = _bands(y_raw, sr=sr, config=config)
    _, E = _bands(y_edit, sr=sr, config=config)
    step = max(1, E.shape[1] // config.max_edit_frames)
    cols = np.arange(0, E.shape[1], step)
    nn, sim = _nearest(_shape(R, config.context_frames), _shape(E, config.context_frames)[:, cols])
    good = sim >= np.quantile(sim, 1.0 - config.keep_best)
    diff = E[:, cols[good]] - R[:, nn[good]]
    raw_loud = R[:, nn[good]] > R[:, nn[good]].max(axis=0) - config.loud_db
    loud = raw_loud & (E[:, cols[good]] > E[:, cols[good]].max(axis=0) - config.loud_db)
    curve = np.array(
        [_median(diff[b], loud[b], raw_loud[b], config.floor_db) for b in range(len(centres))]
    )
    curve = np.maximum(curve, config.floor_db)
    low = centres < 8000.0
    gain = float(np.median(curve[low]))
    spread = np.abs(diff - curve[:, None])[loud]
    noise = float(np.median(spread)) if spread.size else 0.0
    applied = bool(np.abs(curve).max() > config.min_chain_db)
    probes = _probes(cols, nn, sim, hop=config.hop_length, n=config.n_probes)
    return Chain(delay, tuple(map(float, centres)), tuple(map(float, curve)), gain, noise,
                 applied, probes)  # fmt: skip


def _probes(cols: np.ndarray, nn: np.ndarray, sim: np.ndarray, *, hop: int, n: int) -> tuple:
    """(edit, raw) sample starts of the ``n`` best-matched frames, spread over the edit."""
    order = np.argsort(-sim)
    picked: list[int] = []
    gap = max(1, len(cols) // (2 * n))  # [columns] keeps probes off one stretch
    for k in order:
        if all(abs(int(k) - j) >= gap for j in picked):
            picked.append(int(k))
        if len(picked) == n:
            break
    return tuple((int(cols[k]) * hop, int(nn[k]) * hop) for k in sorted(picked))


def copy_floor_db(
    y_raw: np.ndarray, y_edit: np.ndarray, chain: Chain, *, sr: int, config: ExportConfig
) -> float:
    """[dB] the lower quartile of :func:`copy_residuals_db`: the level below which a difference
    is the export's, not the editor's."""
    return floor_of(copy_residuals_db(y_raw, y_edit, chain, sr=sr, config=config))


def floor_of(residuals_db: np.ndarray) -> float:
    """[dB] the lower quartile of per-probe residuals (-120, float rounding, for none)."""
    return float(np.quantile(residuals_db, 0.25)) if len(residuals_db) else -120.0


def copy_residuals_db(
    y_raw: np.ndarray, y_edit: np.ndarray, chain: Chain, *, sr: int, config: ExportConfig
) -> np.ndarray:
    """[dB] per probe of the chain, the residual of an edit window against the raw window that
    best lines up with it (lag searched to the sample, least-squares gain)."""
    from scipy.signal import correlate

    W, hop = int(config.probe_sec * sr), config.hop_length
    res = []
    for e0, r0 in chain.probes:
        e = y_edit[e0 : e0 + W]
        lo = max(0, r0 - 2 * hop)
        r = y_raw[lo : r0 + W + 2 * hop]
        if len(e) < W or len(r) < W or float(e @ e) <= 1e-12:
            continue
        lag = int(np.argmax(correlate(r, e, mode="valid")))
        ref = r[lag : lag + W]
        g = float(ref @ e) / max(float(ref @ ref), 1e-12)
        d = e - g * ref
        res.append(10 * np.log10(float(d @ d) / float(e @ e) + 1e-12))
    return np.asarray(res, dtype=float)


def apply_chain(y: np.ndarray, chain: Chain, *, sr: int, config: ExportConfig) -> np.ndarray:
    """[shape=(C, L)] ``y`` through the chain's curve (a linear-phase FIR, no delay)."""
    from scipy.signal import fftconvolve, firwin2

    if not chain.applied:
        return y
    nyq = sr / 2.0
    f = np.concatenate([[0.0], chain.band_hz, [nyq]])
    g = np.concatenate([[chain.curve_db[0]], chain.curve_db, [chain.curve_db[-1]]])
    keep = np.concatenate([[True], np.diff(f) > 0])
    taps = firwin2(config.fir_taps, f[keep] / nyq, 10 ** (g[keep] / 20.0))
    out = fftconvolve(y, taps[None, :], mode="same", axes=1)
    return out.astype(y.dtype, copy=False)


def codec_delay(y_raw: np.ndarray, y_edit: np.ndarray, *, sr: int, config: ExportConfig) -> int:
    """[samples] how late the edit's opening plays the raw's opening (0 if it does not)."""
    max_lag = int(config.max_delay_ms * 1e-3 * sr)
    n = int(config.delay_probe_sec * sr)
    if len(y_raw) < n + max_lag or len(y_edit) < n + max_lag:
        return 0
    a = y_raw[:n]
    b = y_edit[: n + max_lag]
    from scipy.signal import correlate

    xc = correlate(b, a, mode="valid")  # lag 0 .. max_lag
    energy = np.sqrt(np.convolve(b**2, np.ones(n), mode="valid") * float(a @ a)) + 1e-12
    r = xc / energy
    lag = int(np.argmax(np.abs(r)))
    return lag if abs(r[lag]) >= config.delay_min_corr else 0


def _bands(y: np.ndarray, *, sr: int, config: ExportConfig) -> tuple[np.ndarray, np.ndarray]:
    """(centres [Hz], [n_bands, T] dB band energies) of a mono signal."""
    n_fft = config.n_fft
    P = spectral.power_spectrogram(y, n_fft=n_fft, hop_length=config.hop_length, center=False)
    P /= spectral.window_sum(n_fft) ** 2  # per unit amplitude, where the 1e-12 floor below sits
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = np.geomspace(config.f_min_hz, sr / 2.0, config.n_bands + 1)
    idx = np.clip(np.searchsorted(freqs, edges), 1, len(freqs) - 1)
    idx = np.maximum.accumulate(np.maximum(idx, np.arange(len(idx)) + 1))
    idx = np.minimum(idx, len(freqs))
    pairs = itertools.pairwise(idx)
    B = np.stack([P[a:b].mean(axis=0) if b > a else P[a - 1] for a, b in pairs])
    return np.sqrt(edges[:-1] * edges[1:]), 10 * np.log10(B + 1e-12)


def _shape(B: np.ndarray, context: int) -> np.ndarray:
    """[n_bands * (2 context + 1), T] level-free, unit-norm matching vectors."""
    X = B - B.mean(axis=0, keepdims=True)
    pad = np.pad(X, ((0, 0), (context, context)), mode="edge")
    T = B.shape[1]
    S = np.vstack([pad[:, k : k + T] for k in range(2 * context + 1)])
    return S / (np.linalg.norm(S, axis=0, keepdims=True) + 1e-9)


def _nearest(R: np.ndarray, E: np.ndarray, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """For each column of ``E``: index of the most similar column of ``R`` and the similarity."""
    nn = np.empty(E.shape[1], dtype=int)
    sim = np.empty(E.shape[1])
    for s in range(0, E.shape[1], chunk):
        M = E[:, s : s + chunk].T @ R
        nn[s : s + chunk] = M.argmax(axis=1)
        sim[s : s + chunk] = M.max(axis=1)
    return nn, sim


def _median(d: np.ndarray, ok: np.ndarray, raw_ok: np.ndarray, floor_db: float) -> float:
    """Median of the frames' differences where both are loud; a band the raw has and the edit
    lost (a codec's low-pass) is at the floor; a band neither has is left alone (0 dB)."""
    if ok.sum() >= 8:
        return float(np.median(d[ok]))
    return floor_db if raw_ok.sum() >= 8 else 0.0
