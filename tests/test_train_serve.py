"""Train = serve: the policy's track table is the same whether training or ``edit`` builds it.

Training reads a labelled track (its decision list's grid, the raw audio) through
``bc_data.load_raw_track``; ``edit`` analyses the raw audio itself. On the grid ``edit`` tracks,
both must give the policy bit-identical inputs: any difference is a skew the policy was never
trained on (the previous code computed the tempo two different ways).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from editorbot.audio.analysis import analyze
from editorbot.audio.beats import BeatGrid, tempo_from_beats
from editorbot.audio.io import load_audio
from editorbot.editing.decisions import DecisionList
from editorbot.envs.track_table import FeatureNormalizer, table_from_analysis
from editorbot.training import bc_data


@pytest.fixture(scope="module")
def labelled_on_tracked_grid(tiny_demo: Path, tmp_path_factory: pytest.TempPathFactory):
    """One demo raw track with a keep-all decision list on the grid ``edit`` tracks."""
    raw = sorted((tiny_demo / "input").glob("*_raw.wav"))[0]
    name = raw.stem.removesuffix("_raw")
    data = tmp_path_factory.mktemp("train_serve")
    (data / "input").mkdir()
    shutil.copy(raw, data / "input" / raw.name)
    audio = load_audio(raw)
    analysis = analyze(audio)
    labels = data / "labels"
    DecisionList(
        audio.sr,
        analysis.grid.beat_times,
        (),
        downbeat_phase=analysis.grid.downbeat_phase,
    ).save(labels / f"{name}.json")
    return name, analysis, labels / f"{name}.json", data


def test_training_and_edit_build_the_same_table(labelled_on_tracked_grid) -> None:
    name, analysis, label_path, data = labelled_on_tracked_grid
    raw = bc_data.load_raw_track(label_path, data)
    normalizer = FeatureNormalizer.fit([raw.features])
    (train,), _ = bc_data.build_tables([raw], normalizer)
    serve = table_from_analysis(name, analysis, normalizer, target_ratio=train.target_ratio)
    # Exact equality, no tolerance: both paths run the same code on the same samples and grid.
    assert train.tempo_bpm == serve.tempo_bpm and train.beat_sec == serve.beat_sec
    assert train.downbeat_phase == serve.downbeat_phase
    for field in ("features", "energy", "phrase_start"):
        np.testing.assert_array_equal(getattr(train, field), getattr(serve, field), err_msg=field)


def test_tempo_has_one_definition(labelled_on_tracked_grid) -> None:
    """The tracker's tempo is the slope over its own grid, so a grid rebuilt from saved beat
    times (a decision list's) has the same tempo."""
    _, analysis, label_path, _ = labelled_on_tracked_grid
    grid = analysis.grid
    assert grid.tempo_bpm == tempo_from_beats(grid.beat_times)
    saved = DecisionList.load(label_path)
    rebuilt = BeatGrid.from_beat_times(
        saved.beat_times, downbeat_phase=saved.downbeat_phase, duration_sec=grid.duration_sec
    )
    assert rebuilt.tempo_bpm == grid.tempo_bpm
