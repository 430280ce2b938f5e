"""Per-beat label metrics: exact answers on hand-made decision lists."""

from __future__ import annotations

import json

import numpy as np
import pytest

from editorbot.editing.actions import ActionAmount, ActionSize, ActionType
from editorbot.editing.decisions import Decision, DecisionList
from editorbot.errors import DatasetError
from editorbot.evaluation.label_metrics import LabelScores, beat_labels

T, S, A = ActionType, ActionSize, ActionAmount
N_BEATS = 32
BEAT_TIMES = np.arange(N_BEATS) * 0.5  # [s] 120 BPM


def _dl(decisions: list[Decision], beat_times: np.ndarray = BEAT_TIMES) -> DecisionList:
    return DecisionList(44100, beat_times, tuple(decisions))


def _score(truth: DecisionList, pred: DecisionList) -> dict:
    scores = LabelScores()
    scores.add(beat_labels(truth), beat_labels(pred))
    return scores.summary()


def test_identical_lists_score_one():
    dl = _dl(
        [
            Decision(0, T.KEEP, S.BAR, A.NEUTRAL),
            Decision(4, T.GAIN, S.BAR, A.POS_SMALL),
            Decision(8, T.CUT, S.TWO_BARS, A.NEUTRAL),
            Decision(16, T.JUMP_BACK, S.BAR, A.NEG_LARGE),
            Decision(16, T.LOOP, S.BAR, A.POS_LARGE),
        ]
    )
    s = _score(dl, dl)
    # Exact: every beat and the one JUMP_BACK event agree, so every rate is exactly 1.
    assert s["type_accuracy"] == 1.0
    assert s["amount_accuracy"] == 1.0
    assert s["effect_macro_f1"] == 1.0
    assert s["per_type"]["JUMP_BACK"]["support"] == 1
    # 32 beats + 1 event; beats 20..31 are undecided and count as KEEP.
    assert s["n_beats"] == N_BEATS + 1


def test_wrong_type_costs_exactly_its_beats():
    truth = _dl([Decision(4, T.KEEP, S.BAR, A.NEUTRAL)])
    pred = _dl([Decision(4, T.CUT, S.BAR, A.NEUTRAL)])
    s = _score(truth, pred)
    # Exact: the 4 beats of the bar are CUT instead of KEEP, the other 28 agree.
    assert s["type_accuracy"] == pytest.approx(28 / 32, abs=1e-12)
    assert s["per_type"]["CUT"]["precision"] == 0.0
    assert s["confusion"][T.KEEP][T.CUT] == 4


def test_wrong_amount_is_counted_where_the_type_is_right():
    truth = _dl([Decision(0, T.GAIN, S.BAR, A.POS_SMALL)])
    pred = _dl([Decision(0, T.GAIN, S.BAR, A.POS_LARGE)])
    s = _score(truth, pred)
    assert s["type_accuracy"] == 1.0
    # Exact: 4 GAIN beats with the wrong amount out of 32 beats whose type is right.
    assert s["amount_accuracy"] == pytest.approx(28 / 32, abs=1e-12)


def test_a_skip_that_equals_one_cut_is_scored_as_that_cut():
    # SKIP PHRASE at beat 8 lands on beat 16: the same 8 beats as CUT TWO_BARS, same audio.
    truth = _dl([Decision(8, T.SKIP, S.PHRASE, A.NEUTRAL)])
    pred = _dl([Decision(8, T.CUT, S.TWO_BARS, A.NEUTRAL)])
    s = _score(truth, pred)
    # Exact: the canonical form of the truth is the prediction, type and size on every beat.
    assert s["type_accuracy"] == 1.0
    assert s["size_accuracy"] == 1.0
    # A SKIP of 12 beats (from beat 4) has no one-CUT equivalent and stays a SKIP: the
    # prediction's 8 CUT beats then miss all 12 SKIP beats.
    s = _score(_dl([Decision(4, T.SKIP, S.PHRASE, A.NEUTRAL)]), pred)
    assert s["per_type"]["SKIP"]["support"] == 12
    assert s["per_type"]["SKIP"]["recall"] == 0.0


def test_beats_are_matched_by_time_not_index():
    truth = _dl([Decision(8, T.CUT, S.BAR, A.NEUTRAL)])
    # The predicted grid has an extra beat at 0 s and is 0.1 s late (a fifth of a beat, inside
    # the half-beat matching window), so true beat 8 is predicted beat 9: comparing by index
    # would be off by one beat.
    pred_times = np.concatenate([[0.0], BEAT_TIMES[:-1] + 0.1])
    pred = _dl([Decision(9, T.CUT, S.BAR, A.NEUTRAL)], pred_times)
    s = _score(truth, pred)
    assert s["per_type"]["CUT"]["f1"] == 1.0


def test_missing_beat_times_is_one_clear_error():
    with pytest.raises(DatasetError, match="no beat_times"):
        beat_labels(DecisionList(44100, None, ()), name="x.json")


def test_evaluate_labels_cli_json(tmp_path, capsys):
    from editorbot.commands.evaluate_labels import main

    truth_dir, pred_dir = tmp_path / "truth", tmp_path / "pred"
    _dl([Decision(0, T.KEEP, S.BAR, A.NEUTRAL)]).save(truth_dir / "a.json")
    _dl([Decision(0, T.CUT, S.BAR, A.NEUTRAL)]).save(pred_dir / "a.json")
    assert main(["--pred", str(pred_dir), "--truth", str(truth_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("type_accuracy", "structural_accuracy", "effect_macro_f1", "amount_accuracy"):
        assert key in out
    assert out["type_accuracy"] == pytest.approx(28 / 32, abs=1e-12)
    assert (pred_dir / "confusion.png").stat().st_size > 1000


def test_evaluate_labels_cli_without_predictions_fails(tmp_path, capsys):
    from editorbot.commands.evaluate_labels import main

    _dl([]).save(tmp_path / "truth" / "a.json")
    (tmp_path / "pred").mkdir()
    assert main(["--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run `editorbot labels` first" in err[0]
