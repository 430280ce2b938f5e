"""The label confidence map: a probability (bounded to [0, 1]), monotone in the evidence that
should only raise it, and fitted by the same code the dev-split coefficients came from."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from editorbot.editing.actions import ActionType
from editorbot.editing.labels.calibration import (
    FEATURES,
    MONOTONE,
    calibrated,
    evidence,
    fit,
    pair_offset,
)
from editorbot.editing.labels.config import CalibrationConfig, GlobalConfig


def _grid() -> np.ndarray:
    """Evidence rows over the whole range each column takes (and beyond, for the bounds)."""
    rng = np.random.default_rng(0)
    X = np.stack([evidence(match=m, share=s, reproduced=r, n_beats=n, type_=t, pair_match=q)
                  for m, s, r, n, t, q in zip(rng.uniform(0, 1, 300), rng.uniform(0, 1, 300),
                                              rng.uniform(0, 1, 300), rng.integers(0, 64, 300),
                                              rng.choice(list(ActionType), 300),
                                              rng.uniform(0, 1, 300), strict=True)])  # fmt: skip
    return X


def test_default_map_is_a_probability_and_monotone_in_its_evidence() -> None:
    cal = GlobalConfig().calibration
    assert len(cal.weights) == len(FEATURES)  # one coefficient per evidence column
    X = _grid()
    p = calibrated(X, cal.weights, cal.bias)
    assert np.all((p >= 0.0) & (p <= 1.0))
    assert np.all(np.isfinite(calibrated(X * 1e6, cal.weights, cal.bias)))  # no overflow
    for name in MONOTONE:
        more = X.copy()
        more[:, FEATURES.index(name)] += 0.1
        # Strictly no lower: float rounding of the logistic is far below 1e-12 here.
        assert np.all(calibrated(more, cal.weights, cal.bias) >= p - 1e-12), name


def test_fit_recovers_a_known_map_and_holds_monotone_weights_non_negative() -> None:
    rng = np.random.default_rng(1)
    X = _grid()
    X = np.concatenate([X] * 20)  # 6,000 samples: the coefficients to about 0.3
    true_w = (0.0, 0.0, 3.0, 0.5, -1.0, 1.0)
    y = (rng.uniform(size=len(X)) < calibrated(X, true_w, -1.0)).astype(float)
    w, b = fit(X, y, l2=0.0)
    # 6,000 Bernoulli draws: each coefficient's standard error is about 0.1-0.15; 0.5 is ~4 se.
    np.testing.assert_allclose(w, true_w, atol=0.5)
    assert b == pytest.approx(-1.0, abs=0.5)
    # An outcome that falls with pair_match: its weight is held at 0, not made negative.
    w_neg, _ = fit(X, 1.0 - y)
    assert min(w_neg[FEATURES.index(n)] for n in MONOTONE) >= 0.0


def test_default_coefficients_are_the_calibration_split_fit() -> None:
    # The values benchmarks/calibrate_labels.py printed on the cal split (RESULTS.md); a change
    # of them is a refit, to be recorded there.
    cal = CalibrationConfig()
    assert cal.weights == (0.169, 0.358, 0.0, 0.686, -0.807, -0.769)
    assert cal.bias == pytest.approx(0.248)
    assert cal.pair_spread == 0.0  # the sharp map: the better of the two in dev CV


def test_pair_spread_pulls_confidence_towards_one_half_in_the_same_order() -> None:
    cal = CalibrationConfig()
    X = _grid()
    sharp = calibrated(X, cal.weights, cal.bias)
    wide = calibrated(X, cal.weights, cal.bias, 1.256)  # the dev split's leave-one-out spread
    assert np.all(np.abs(wide - 0.5) <= np.abs(sharp - 0.5) + 1e-12)  # rounding only
    order = np.argsort(sharp, kind="stable")
    assert np.all(np.diff(wide[order]) >= -1e-12)  # the same ranking: rounding only


def test_pair_offset_finds_a_pair_read_worse_than_the_map_says() -> None:
    rng = np.random.default_rng(2)
    X = _grid()
    w, b = (0.0, 0.0, 2.0, 0.5, 0.0, 0.0), 0.0
    y = (rng.uniform(size=len(X)) < calibrated(X, w, b - 1.5)).astype(float)
    # 300 draws give a standard error of about 0.15 on the offset; the prior pulls it in a bit.
    assert pair_offset(X, y, w, b) == pytest.approx(-1.5, abs=0.5)


def test_calibrate_labels_names_a_missing_or_empty_cal_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fitting script on a folder with no cal run, and on one whose pairs carry no evidence
    rows: exit 1 and one line naming the folder and what to run."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import calibrate_labels

    assert calibrate_labels.main(["--work", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "real_cal_exported: not found" in err[0] and "label_suite" in err[0]
    pair = tmp_path / "run" / "real_cal_exported" / "song"
    pair.mkdir(parents=True)  # a pair folder with no pred.json: labelled by nothing
    assert calibrate_labels.main(["--work", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "0 pairs with evidence rows" in err[0]


def test_label_suite_refuses_a_cal_split_of_demo_data(capsys: pytest.CaptureFixture[str]) -> None:
    """The calibration split is real music only: asking for it with the demo source is one
    error line naming the fix, exit 2 (argparse's usage error), before any data is made."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import label_suite

    with pytest.raises(SystemExit) as exit_info:
        label_suite.main(["--split", "cal", "--sources", "demo,real"])
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and "--split cal is real music only: add --sources real" in err[0]
