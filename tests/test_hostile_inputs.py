"""Hostile and broken files: each gives ONE line on stderr naming the file and the field, exit 1.

One table of cases (from the issue's review): decision lists that overflow, are not numbers,
nest 100k deep or carry fractions; render settings that would allocate gigabytes; checkpoints
with empty weights, a JSON list, no config, weights outside the folder, sizes that do not match
the weights; a NaN normaliser; negative targets and inputs too long to decode; configs with
negative or huge values, escaping names and YAML alias bombs. Each case runs the real CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from editorbot.cli import main as cli

SR = 8000
BEAT_SEC = 0.5
N_BEATS = 24


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 12 s click track, a valid decision list for it, an RL and a supervised checkpoint."""
    from env_tables import make_table

    from editorbot.audio.features import N_FEATURES
    from editorbot.envs.editing_env import EditingEnv
    from editorbot.envs.track_table import FeatureNormalizer
    from editorbot.models.rl_module import EditorRLModule, ModuleConfig
    from editorbot.models.supervised import SupervisedConfig, SupervisedEditModel, save_checkpoint
    from editorbot.training.ppo import RLRunConfig
    from editorbot.training.rl_train import write_best

    tmp = tmp_path_factory.mktemp("hostile")
    t = np.arange(int(N_BEATS * BEAT_SEC * SR)) / SR
    y = 0.1 * np.sin(2 * np.pi * 220 * t) + (t % BEAT_SEC < 0.01) * 0.8
    sf.write(tmp / "raw.wav", y.astype(np.float32), SR)
    cfg = RLRunConfig(module=ModuleConfig.tiny())
    env = EditingEnv({"tables": [make_table(0)]})
    spaces = {"observation_space": env.observation_space, "action_space": env.action_space}
    module = EditorRLModule(**spaces, model_config=cfg.module.__dict__)
    norm = FeatureNormalizer(np.zeros(N_FEATURES, np.float32), np.ones(N_FEATURES, np.float32))
    write_best(tmp / "rl", module, norm, cfg, {"window": 64}, [make_table(0)], {"iteration": 0})
    save_checkpoint(tmp / "sup", SupervisedEditModel(SupervisedConfig.tiny()))
    return {"tmp": tmp, "raw": tmp / "raw.wav", "rl": tmp / "rl", "sup": tmp / "sup"}


def _decisions(tmp: Path, decisions: object, name: str = "d.json") -> Path:
    times = [i * BEAT_SEC for i in range(N_BEATS)]
    doc = {"version": 1, "sample_rate": SR, "beat_times": times, "decisions": decisions}
    (tmp / name).write_text(json.dumps(doc))
    return tmp / name


def _render(f: dict[str, Path], decisions: Path, *extra: str) -> list[str]:
    out = f["tmp"] / "out.wav"
    return ["render", str(f["raw"]), "--decisions", str(decisions), "--out", str(out), *extra]


def _edit(f: dict[str, Path], ckpt: Path, *extra: str, raw: Path | None = None) -> list[str]:
    out = str(f["tmp"] / "edited.wav")
    return ["edit", str(raw or f["raw"]), "--checkpoint", str(ckpt), "--output", out, *extra]


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    return dst


def _beat(value: str) -> Callable[[dict[str, Path]], list[str]]:
    """A render of one decision whose beat is the raw JSON text ``value``."""

    def make(f: dict[str, Path]) -> list[str]:
        path = _decisions(f["tmp"], [{"beat": 0, "type": "KEEP"}], f"beat_{len(value)}.json")
        path.write_text(path.read_text().replace('"beat": 0', f'"beat": {value}'))
        return _render(f, path)

    return make


def _deep(f: dict[str, Path]) -> list[str]:
    path = f["tmp"] / "deep.json"
    path.write_text('{"version": 1, "sample_rate": 8000, "decisions": ' + "[" * 100_000)
    return _render(f, path)


def _too_long_output(f: dict[str, Path]) -> list[str]:
    """JUMP_BACK + LOOP x4 on every bar: 5x the raw length, past the default 4x."""
    ds: list[dict[str, object]] = []
    for beat in range(4, N_BEATS, 4):
        ds.append({"beat": beat, "type": "JUMP_BACK", "size": "BAR", "amount": "NEG_LARGE"})
        ds.append({"beat": beat, "type": "LOOP", "size": "BAR", "amount": "POS_LARGE"})
    return _render(f, _decisions(f["tmp"], ds, "loops.json"))


def _empty_weights(f: dict[str, Path]) -> list[str]:
    ckpt = _copy(f["rl"], f["tmp"] / "rl_empty")
    (ckpt / "rl_module" / "policy_net.pt").write_bytes(b"")
    return _edit(f, ckpt)


def _json_list(f: dict[str, Path]) -> list[str]:
    ckpt = _copy(f["rl"], f["tmp"] / "rl_list")
    (ckpt / "editorbot_checkpoint.json").write_text("[1, 2]")
    return _edit(f, ckpt)


def _huge_hidden(f: dict[str, Path]) -> list[str]:
    ckpt = _copy(f["rl"], f["tmp"] / "rl_hidden")
    meta_path = ckpt / "rl_module" / "policy_net.json"
    meta = json.loads(meta_path.read_text())
    meta["module_config"]["hidden"] = 8192
    meta_path.write_text(json.dumps(meta))
    return _edit(f, ckpt)


def _nan_normaliser(f: dict[str, Path]) -> list[str]:
    ckpt = _copy(f["rl"], f["tmp"] / "rl_nan")
    norm = json.loads((ckpt / "normalizer.json").read_text())
    norm["mean"][3] = float("nan")
    (ckpt / "normalizer.json").write_text(json.dumps(norm))  # json writes NaN, reads it back
    return _edit(f, ckpt)


def _sup_meta(change: dict[str, object], drop: str | None = None) -> Callable:
    def make(f: dict[str, Path]) -> list[str]:
        ckpt = _copy(f["sup"], f["tmp"] / f"sup_{drop or next(iter(change))}")
        meta = {**json.loads((ckpt / "editorbot_checkpoint.json").read_text()), **change}
        meta.pop(drop or "", None)
        (ckpt / "editorbot_checkpoint.json").write_text(json.dumps(meta))
        return _edit(f, ckpt)

    return make


def _two_hours(f: dict[str, Path]) -> list[str]:
    path = f["tmp"] / "two_hours.wav"
    if not path.exists():  # 2 h at 1 kHz mono int16: 14 MB, the header says 7200 s
        sf.write(path, np.zeros(7200 * 1000, np.int16), 1000, subtype="PCM_16")
    return _edit(f, f["rl"], raw=path)


def _yaml(text: str, name: str) -> Callable[[dict[str, Path]], list[str]]:
    def make(f: dict[str, Path]) -> list[str]:
        path = f["tmp"] / f"{name}.yaml"
        path.write_text(text)
        return ["tune", str(path), "--storage", str(f["tmp"] / "storage")]

    return make


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)

# (case, argv builder, what the one line must name: the file and the field)
CASES: list[tuple[str, Callable[[dict[str, Path]], list[str]], str]] = [
    ("beat 1e400", _beat("1e400"), r"beat_5\.json: decision 0: beat: inf is not a whole"),
    ("beat abc", _beat('"abc"'), r"beat_5\.json: decision 0: beat: 'abc' is not a whole"),
    ("beat 3.7", _beat("3.7"), r"beat_3\.json: decision 0: beat: 3\.7 is not a whole"),
    ("beat -1", _beat("-1"), r"beat_2\.json: decision 0: beat: -1 outside \[0, "),
    ("100k-deep nesting", _deep, r"deep\.json: not valid JSON \(RecursionError"),
    (
        "output 5x the raw",
        _too_long_output,
        r"loops\.json: the decisions make more than \d+\.\d s of output, past the limit of 48",
    ),
    (
        "--max-output-sec",
        lambda f: _render(f, _decisions(f["tmp"], []), "--max-output-sec", "5"),
        r"d\.json: .* past the limit of 5\.0 s",
    ),
    (
        "--crossfade-ms 1e9",
        lambda f: _render(f, _decisions(f["tmp"], []), "--crossfade-ms", "1e9"),
        r"crossfade_ms = 1000000000\.0 outside \[0\.0, 1000\.0\]",
    ),
    ("zero-byte policy_net.pt", _empty_weights, r"rl_empty/rl_module/policy_net\.pt: cannot read"),
    (
        "checkpoint JSON [1,2]",
        _json_list,
        r"rl_list/editorbot_checkpoint\.json: expected a JSON obj",
    ),
    (
        "hidden 8192 in the JSON",
        _huge_hidden,
        r"policy_net\.json: the weights do not fit the config: .* in the weights",
    ),
    ("NaN in the normaliser", _nan_normaliser, r"rl_nan/normalizer\.json: mean\[3\]: nan is not"),
    (
        "supervised without config",
        _sup_meta({}, drop="config"),
        r"sup_config/editorbot_checkpoint\.json: field 'config' missing",
    ),
    (
        "weights ../../..",
        _sup_meta({"weights": "../../../etc/passwd"}),
        r"editorbot_checkpoint\.json: weights '\.\./\.\./\.\./etc/passwd' must name a file inside",
    ),
    (
        "--target-duration -5",
        lambda f: _edit(f, f["rl"], "--target-duration", "-5"),
        r"target duration -5\.0 s: need a positive",
    ),
    (
        "--target-duration nan",
        lambda f: _edit(f, f["rl"], "--target-duration", "nan"),
        r"target duration nan s: need a positive",
    ),
    ("2-hour input", _two_hours, r"two_hours\.wav: 120\.0 min, .*edit takes at most 30 min"),
    ("lr: -5", _yaml("ppo:\n  lr: -5.0\n", "lr"), r"lr\.yaml: ppo: lr = -5\.0: a learning rate"),
    (
        "train_batch_size: -1",
        _yaml("ppo:\n  train_batch_size: -1\n", "tbs"),
        r"tbs\.yaml: ppo: train_batch_size = -1: outside \[0, ",
    ),
    (
        "hidden: 1e9",
        _yaml("module:\n  hidden: 1000000000\n", "hidden"),
        r"hidden\.yaml: module: hidden = 1000000000: outside \[1, 16384\]",
    ),
    (
        "tune.name escapes",
        _yaml("tune:\n  name: ../../../../tmp/x\n", "name"),
        r"name\.yaml.*tune\.name '\.\./\.\./\.\./\.\./tmp/x': must be a plain folder name",
    ),
    ("YAML alias bomb", _yaml(BOMB, "bomb"), r"bomb\.yaml: not valid YAML .*alias \*a"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("case", "make", "expected"), CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_one_line_naming_file_and_field(
    case: str,
    make: Callable[[dict[str, Path]], list[str]],
    expected: str,
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = make(files)
    capsys.readouterr()
    assert cli(argv) == 1, case
    err = capsys.readouterr().err.strip().splitlines()
    lines = [line for line in err if not line.startswith(("20", "WARNING", "INFO"))]  # log lines
    assert len(lines) == 1 and lines[0].startswith("editorbot: error: "), err
    assert "Traceback" not in "\n".join(err)
    import re

    assert re.search(expected, lines[0]), lines[0]
    assert not (files["tmp"] / "out.wav").exists() and not (files["tmp"] / "edited.wav").exists()
