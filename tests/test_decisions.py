"""Edit decision lists: JSON round trip, validation errors, plans, action arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from editorbot.editing.actions import ActionAmount, ActionSize, ActionType
from editorbot.editing.decisions import (
    GAP_DECISION,
    Decision,
    DecisionList,
    decisions_from_actions,
    plan_segments,
)
from editorbot.errors import DatasetError

A, S, T = ActionAmount, ActionSize, ActionType


def _dl(*decisions, beat_times=None):
    return DecisionList(sample_rate=44100, beat_times=beat_times, decisions=tuple(decisions))


def test_json_round_trip_by_name(tmp_path):
    dl = _dl(
        Decision(0, T.KEEP, S.BAR, A.NEUTRAL),
        Decision(4, T.GAIN, S.BEAT, A.NEG_SMALL, confidence=0.5),
        beat_times=np.arange(16) * 0.5,
    )
    path = dl.save(tmp_path / "d.json")
    obj = json.loads(path.read_text())
    assert obj["version"] == 1 and obj["decisions"][1]["type"] == "GAIN"
    assert obj["decisions"][1]["amount"] == "NEG_SMALL"
    back = DecisionList.load(path)
    assert back.decisions == dl.decisions
    np.testing.assert_array_equal(back.beat_times, dl.beat_times)
    np.testing.assert_array_equal(back.beat_samples(), np.arange(16) * 22050)


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        ({"version": 2}, "unsupported decision-list version 2"),
        ({"decisions": [{"beat": 0, "type": "WOBBLE"}]}, "unknown type 'WOBBLE'"),
        ({"decisions": [{"beat": 0, "type": "CUT", "size": "HUGE"}]}, "unknown size 'HUGE'"),
    ],
)
def test_bad_files_name_the_file(tmp_path, patch, match):
    obj = {"version": 1, "sample_rate": 44100, "beat_times": None, "decisions": []}
    obj.update(patch)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(DatasetError, match=match) as info:
        DecisionList.load(path)
    assert str(path) in str(info.value)


def test_not_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{nope")
    with pytest.raises(DatasetError, match=r"x\.json: not valid JSON"):
        DecisionList.load(path)


@pytest.mark.parametrize(
    ("decisions", "match"),
    [
        ((Decision(20, T.KEEP, S.BEAT, A.NEUTRAL),), "beat 20 is outside the track's 16 beats"),
        (
            (Decision(0, T.KEEP, S.BAR, A.NEUTRAL), Decision(2, T.CUT, S.BEAT, A.NEUTRAL)),
            "overlaps the previous decision",
        ),
        ((Decision(0, T.GAIN, S.BAR, A.NEUTRAL),), "amount invalid for the type"),
        ((Decision(0, T.KEEP, S.TWO_PHRASES, A.NEUTRAL),), "size does not fit"),
        ((Decision(0, T.JUMP_BACK, S.BAR, A.NEG_LARGE),), "amount invalid"),  # nothing behind
    ],
)
def test_validate_errors(decisions, match):
    with pytest.raises(DatasetError, match=match):
        _dl(*decisions).validate(16, name="t.json")


def test_jump_back_shares_its_beat_with_the_next_decision_and_gaps_are_kept():
    dl = _dl(
        Decision(4, T.JUMP_BACK, S.BAR, A.NEG_LARGE),
        Decision(4, T.CUT, S.BAR, A.NEUTRAL),
    )
    plan = plan_segments(dl, 12)
    got = [(i, p.type, p.start_beat, p.end_beat) for i, p in plan]
    assert got == [
        (GAP_DECISION, T.KEEP, 0, 4),
        (0, T.JUMP_BACK, 0, 4),
        (GAP_DECISION, T.KEEP, 8, 12),
    ]


def test_actions_round_trip_through_decisions():
    actions = np.array(
        [
            [T.KEEP, S.BAR, A.NEUTRAL],
            [T.JUMP_BACK, S.BEAT, A.NEG_LARGE],
            [T.LOOP, S.BAR, A.POS_LARGE],
            [T.SKIP, S.PHRASE, A.NEUTRAL],
        ]
    )
    dl = decisions_from_actions(actions, n_beats=40, sample_rate=22050)
    assert [d.beat for d in dl.decisions] == [0, 4, 4, 8]
    np.testing.assert_array_equal(dl.to_action_array(), actions)
    dl.validate(40)
    with pytest.raises(DatasetError, match="amount invalid"):
        decisions_from_actions([[T.GAIN, S.BAR, A.NEUTRAL]], n_beats=8, sample_rate=22050)
