"""A decision's confidence as the probability that it is right: a logistic (Platt) map of the
decision's own evidence and its pair's.

The evidence (:func:`evidence`) is what the labeller measures anyway: how well the decision's
output beats match their raw source (``match``, in units of the pair's contrast), the least
share of a beat its pieces cover (a seam inside a beat), the share of its output the parse
reproduces, its length, its kind (KEEP, structure, effect) and the whole pair's mean match
(a pair whose every copy matches loosely is a pair the labeller reads worse everywhere). None of
it names a pair or a track, so the map's few coefficients (:class:`CalibrationConfig`) carry
over to pairs it was not fitted on. What the evidence leaves unexplained varies from pair to
pair (one pair is read worse throughout); the map can be averaged over that spread
(``pair_spread``, off by default: it did not help in cross-validation).
``benchmarks/calibrate_labels.py`` fits the coefficients and the spread on the label suite's dev
split and reports the leave-one-pair-out reliability.

Method: Platt scaling (Platt, 1999, "Probabilistic outputs for support vector machines"),
https://en.wikipedia.org/wiki/Platt_scaling, with the coefficients of the evidence that should
only raise the probability held non-negative, so the map is monotone in it.
"""

from __future__ import annotations

import numpy as np

from editorbot.editing.actions import ActionType

FEATURES = ("quality", "match", "pair_match", "log_beats", "keep", "structure")
"""Names of the evidence columns, in the order of :attr:`CalibrationConfig.weights`."""
MONOTONE = ("quality", "match", "pair_match")
"""Evidence whose coefficient is held >= 0 (more of it never lowers the confidence)."""
_STRUCTURE = frozenset(
    {ActionType.CUT, ActionType.LOOP, ActionType.REPEAT_PREV, ActionType.SWAP_NEXT,
     ActionType.REORDER, ActionType.SKIP, ActionType.JUMP_BACK}
)  # fmt: skip


def evidence(
    *, match: float, share: float, reproduced: float, n_beats: int, type_: ActionType,
    pair_match: float,
) -> np.ndarray:  # fmt: skip
    """[shape=(len(FEATURES),)] one decision's evidence.

    Args:
        match: [0..1] mean match of its output beats' pieces.
        share: [0..1] least share of a beat its pieces cover.
        reproduced: [0..1] share of its output beats the parse reproduces.
        n_beats: [beats] output beats it plays (0 for one that plays nothing).
        type_: its type.
        pair_match: [0..1] mean match over all the pair's output beats.
    """
    quality = float(np.clip(match * share * reproduced, 0.0, 1.0))
    return np.array([
        quality, match, pair_match, np.log1p(max(n_beats, 0)),
        float(type_ == ActionType.KEEP), float(type_ in _STRUCTURE),
    ])  # fmt: skip


def calibrated(
    x: np.ndarray, weights: tuple[float, ...], bias: float, pair_spread: float = 0.0
) -> np.ndarray:
    """[0..1] the probability that decisions with evidence ``x`` [shape=(..., F)] are right.

    ``pair_spread`` [logit] is the standard deviation of the pair-to-pair offset the evidence
    does not explain (a pair the labeller reads better or worse throughout): the probability
    for a pair not seen is the logistic averaged over that offset, by the probit approximation
    ``sigmoid(z / sqrt(1 + pi * spread^2 / 8))`` (MacKay, 1992, "The evidence framework applied
    to classification networks"), which pulls every confidence towards 0.5 and keeps its order.
    """
    z = np.asarray(x, dtype=float) @ np.asarray(weights, dtype=float) + bias
    z = z / np.sqrt(1.0 + np.pi * pair_spread**2 / 8.0)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))


def pair_offset(x: np.ndarray, y: np.ndarray, weights: tuple[float, ...], bias: float) -> float:
    """[logit] the offset that best fits one pair's outcomes ``y`` under the map, with a weak
    N(0, 2^2) prior (a pair read all right has no finite best offset)."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(x, dtype=float) @ np.asarray(weights, dtype=float) + bias
    y = np.asarray(y, dtype=float)

    def loss(u: float) -> float:
        p = 1.0 / (1.0 + np.exp(-np.clip(z + u, -50.0, 50.0)))
        eps = 1e-12
        return float(-np.sum(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)) + u * u / 8.0)

    return float(minimize_scalar(loss, bounds=(-10.0, 10.0), method="bounded").x)


def fit(X: np.ndarray, y: np.ndarray, *, l2: float = 1e-3) -> tuple[tuple[float, ...], float]:
    """(weights, bias) of the logistic map fitted to evidence ``X`` [shape=(N, F)] and 0/1
    outcomes ``y`` [shape=(N,)] by penalised log-loss, the :data:`MONOTONE` weights >= 0.

    ``l2`` is the ridge weight per sample (keeps the fit finite where a column separates)."""
    from scipy.optimize import minimize

    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    N, F = X.shape

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:F], theta[F]
        p = calibrated(X, tuple(w), float(b))
        eps = 1e-12
        ll = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)) + l2 * (w @ w)
        g = p - y
        return float(ll), np.append(X.T @ g / N + 2 * l2 * w, g.mean())

    bounds = [(0.0, None) if name in MONOTONE else (None, None) for name in FEATURES]
    res = minimize(
        loss, np.zeros(F + 1), jac=True, method="L-BFGS-B", bounds=[*bounds, (None, None)]
    )
    return tuple(float(v) for v in res.x[:F]), float(res.x[F])
