"""What ``editorbot labels`` says about the pairs it labelled."""

from __future__ import annotations

from pathlib import Path

import pytest

from editorbot.commands.labels import report_results
from editorbot.editing.align_labels import LabelConfig
from editorbot.errors import DatasetError


def test_pairs_of_low_mean_confidence_are_named_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    floor = LabelConfig().low_pair_confidence
    results = [
        {"name": "sure", "decisions": 9, "mean_confidence": floor + 0.3, "low_confidence": 0},
        {"name": "doubt", "decisions": 7, "mean_confidence": floor - 0.2, "low_confidence": 5},
        {"name": "bad", "error": "the edit does not match the raw track"},
    ]
    assert report_results(results, tmp_path, DatasetError) == 0
    err = capsys.readouterr().err.splitlines()
    named = [line for line in err if "mean label confidence" in line]
    assert len(named) == 1 and "doubt" in named[0] and f"{floor - 0.2:.2f}" in named[0]
    assert any("skipped bad" in line for line in err)  # a refused pair still says why
