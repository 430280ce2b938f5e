"""The editor's beat grid, read off the edit's seams.

An editor cuts on their own grid (a DAW's tempo, another beat tracker), which may sit at another
metrical level, a few percent off in tempo or out of phase with the raw track's tracked beats;
then a loop or a cut starts inside one of the tracked beats and no decision on that grid can say
it. The seams of the path (where it leaves the raw track's order, and where it enters or leaves
a changed stretch) are the editor's grid points, to a crossfade's width. So: a straight grid
(period, phase) is fitted to the seams by alternating nearest-beat assignment and least squares,
starting from the tracked grid's period at each metrical ratio, and it replaces the tracked grid
where it puts the seams clearly nearer to beats. Without enough seams the tracked grid stays.

Shape:
    seams: [shape=(M,)] seconds of the raw track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from editorbot.editing.labels.config import GridConfig
from editorbot.editing.labels.explain import Piece


@dataclass(frozen=True)
class GridChoice:
    """The grid the labels are read on and why."""

    beat_times: np.ndarray
    """[shape=(N,)] [s] the beats."""
    fitted: bool
    """[flag] the grid fitted to the seams (else the tracked one)."""
    tracked_error_ms: float
    """[ms] median distance of the seams to the nearest tracked beat."""
    fitted_error_ms: float
    """[ms] the same for the fitted grid (NaN: none fitted)."""
    n_seams: int
    """[points] seams the fit used."""

    def meta(self) -> dict[str, object]:
        return {
            "fitted": self.fitted,
            "tracked_error_ms": round(self.tracked_error_ms, 2),
            "fitted_error_ms": round(self.fitted_error_ms, 2),
            "n_seams": self.n_seams,
            "period_sec": float(np.median(np.diff(self.beat_times))) if len(self.beat_times) > 1
            else None,
        }  # fmt: skip


def seams(ps: list[Piece], *, hop_sec: float, raw_sec: float, margin_sec: float) -> np.ndarray:
    """[s] raw positions where the path leaves or enters the raw track's order or a layer,
    away from the track's ends by ``margin_sec`` (there a seam may be the file's own edge)."""
    points = []
    for p, q in zip(ps, ps[1:], strict=False):
        if q.s0 != p.s1 or q.changed != p.changed:
            points += [p.s1 * hop_sec, q.s0 * hop_sec]
    x = np.asarray(points, dtype=float)
    return np.unique(np.round(x[(x > margin_sec) & (x < raw_sec - margin_sec)], 3))


def choose_grid(
    tracked: np.ndarray, seam_sec: np.ndarray, *, raw_sec: float, config: GridConfig
) -> GridChoice:
    """The tracked grid, or a straight one fitted to the seams where it fits them clearly
    better (see the module docstring)."""
    tracked = np.asarray(tracked, dtype=float)
    err_tracked = _error(seam_sec, tracked)
    none = GridChoice(tracked, False, 1e3 * err_tracked, float("nan"), len(seam_sec))
    if len(seam_sec) < config.min_seams or len(tracked) < 4:
        return none
    period = float(np.median(np.diff(tracked)))
    fits = []
    for ratio in config.ratios:
        T = period * ratio
        if not config.min_period_sec <= T <= config.max_period_sec:
            continue
        fit = _fit(seam_sec, T, config)
        if fit is not None:
            fits.append((abs(np.log(ratio)), fit))
    if not fits:
        return none
    # Seams mostly fall on bar lines, which a grid of twice (or four times) the period fits as
    # well, so the seams cannot pick the metrical level: of the fits within tie_ms of the best,
    # the one nearest the tracked level wins.
    best_err = min(f[2] for _, f in fits)
    ok = [(r, f) for r, f in fits if f[2] <= best_err + config.tie_ms / 1e3]
    phase, T, err = min(ok, key=lambda rf: rf[0])[1]
    if not (err <= config.max_error_ms / 1e3 and err * config.better_by <= err_tracked):
        return replace_error(none, err)
    k0 = -int(np.floor(phase / T))
    n = int(np.floor((raw_sec - phase) / T)) + k0 + 1
    beats = phase + T * (np.arange(n) - k0)
    beats = beats[(beats >= 0) & (beats < raw_sec)]
    return GridChoice(beats, True, 1e3 * err_tracked, 1e3 * err, len(seam_sec))


def replace_error(choice: GridChoice, err: float) -> GridChoice:
    return GridChoice(choice.beat_times, False, choice.tracked_error_ms, 1e3 * err,
                      choice.n_seams)  # fmt: skip


def _error(points: np.ndarray, beats: np.ndarray) -> float:
    """[s] median distance of each point to its nearest beat."""
    if len(points) == 0 or len(beats) == 0:
        return float("inf")
    i = np.clip(np.searchsorted(beats, points), 1, len(beats) - 1)
    d = np.minimum(np.abs(points - beats[i - 1]), np.abs(points - beats[i]))
    return float(np.median(d))


def _fit(points: np.ndarray, T0: float, config: GridConfig) -> tuple[float, float, float] | None:
    """(phase, period, median error) of a straight grid fitted to ``points`` from period T0:
    the phase with the most points near a beat, then nearest-beat indices and a least-squares
    line, a few times over, within ``config.max_tempo_change`` of T0."""
    ph = np.linspace(0.0, T0, 48, endpoint=False)
    d = np.abs(((points[None] - ph[:, None]) + 0.5 * T0) % T0 - 0.5 * T0)
    phase, T = float(ph[np.argmin(np.median(d, axis=1))]), T0
    for _ in range(config.iterations):
        k = np.round((points - phase) / T)
        resid = points - (phase + k * T)
        keep = np.abs(resid) <= max(3 * float(np.median(np.abs(resid))), 0.01)
        if keep.sum() < config.min_seams or np.ptp(k[keep]) < 2:
            return None
        T_new, phase = np.polyfit(k[keep], points[keep], 1)
        if abs(T_new / T0 - 1) > config.max_tempo_change:
            return None
        T = float(T_new)
    phase = float(phase % T)
    k = np.round((points - phase) / T)
    return phase, T, float(np.median(np.abs(points - (phase + k * T))))
