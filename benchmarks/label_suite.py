"""The label benchmark: editorbot's labeller beside plain DTW and keep-all, dev and report splits.

Sources:

* demo data: ``editorbot demo-data``, 3 seeds x every style x 8 songs per split (``--quick``: 1
  seed x every style x 2 songs of 30-45 s). The report split's seeds (73001-73003) are used
  nowhere else; tune on the dev split (5101-5103) only.
* a calibration split (``--split cal``, real music only): the dev split's tracks, excerpted
  further into each track (``CAL_OFFSET``) and edited with edit seeds used nowhere else, so its
  pairs were never looked at while the labeller's costs were set; the confidence map is fitted
  there (``benchmarks/calibrate_labels.py --split cal``), not on the dev pairs it would flatter.
* real music, edited by the independent editor of :mod:`suite_editor` (plain numpy on librosa's
  beat grid, exported: crossfades 5-80 ms, cuts +-10 ms off the beat, peak -1 dBFS, MP3 round
  trip, some at 48 kHz): Debian's ``wesnoth-1.16-music`` (``apt-get install
  wesnoth-1.16-music``) and, where ``music21`` imports and ``fluidsynth`` with a GM soundfont is
  installed, Bach chorales from music21's corpus. Excerpts of 50 s from each track, decoded once
  and cached under ``--cache``. Dev and report take disjoint tracks.

Scoring is by time: each true beat interval's midpoint is looked up on the prediction's own grid
(:func:`editorbot.evaluation.label_metrics.on_grid`). The baselines get the truth's grid
(an advantage the labeller does not have). Only the report split's totals may be read; never
tune on one of its pairs.

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/label_suite.py --split dev --quick
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/label_suite.py --split report --quick \
        --out /tmp/label_suite/report.json

What to expect: one line per pair on stderr (dev split only), then a markdown table per source
and method on stdout (type accuracy, structural accuracy, effect macro F1, per-type recall,
CPU-s per minute of raw audio); ``--out`` gets the JSON. The quick size takes about 5-10
minutes on one core; the full size about an hour.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np

SEEDS = {"dev": (5101, 5102, 5103), "report": (73001, 73002, 73003)}
"""Demo-data seeds per split; the report split's are used nowhere else."""
WESNOTH = Path("/usr/share/games/wesnoth/1.16/data/core/music")
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
EXCERPT_SEC = 50.0
"""[s] length of each real-music excerpt."""
EXCERPT_OFFSET = {"dev": 0.25, "report": 0.25, "cal": 0.6}
"""[share of the track] where each split's excerpts start (cal: new audio of the dev tracks)."""
EDIT_SEED_BASE = {"dev": 1000, "report": 7000, "cal": 4000}
"""First seed of the independent editor's rng per split."""
SCORE_ONLY = False
METHOD = "auto"
"""Set by ``--method``: which labeller ``LabelConfig.method`` names."""
BEFORE = False
"""Set by ``--before``: also run the labeller with the export model off (as it was)."""
"""Set by ``--score-only``: predictions already written are scored, not made again."""
CHORALES = ("bach/bwv66.6", "bach/bwv269", "bach/bwv347", "bach/bwv153.1")
"""music21 corpus pieces; dev takes the even ones, report the odd ones."""


def demo_pairs(
    work: Path, split: str, quick: bool, n_seeds: int | None = None
) -> list[tuple[str, Path]]:
    """(style, folder) of generated demo data (generated once; the seed fixes the files);
    ``n_seeds``: how many of the split's seeds (default: 1 quick, all 3 full)."""
    from editorbot.commands.demo_data import STYLE_NAMES
    from editorbot.commands.demo_data import main as demo_data

    seeds = SEEDS[split][: n_seeds or (1 if quick else len(SEEDS[split]))]
    size = ["--tracks", "2", "--min-seconds", "30", "--max-seconds", "45"] if quick else [
        "--tracks", "8"]  # fmt: skip
    out = []
    for seed in seeds:
        for style in STYLE_NAMES:
            d = work / f"demo_{split}_{'q' if quick else 'f'}" / f"{style}_{seed}"
            if not (d / "truth").exists():
                demo_data(["--out", str(d), "--seed", str(seed), "--style", style, *size])
            out.append((style, d))
    return out


def real_tracks(cache: Path, split: str, n: int) -> list[tuple[str, np.ndarray, int]]:
    """(name, y [C, L], sr) excerpts of real music for ``split`` (decoded once into ``cache``)."""
    import soundfile as sf

    cache.mkdir(parents=True, exist_ok=True)
    out = []
    files = sorted(p for p in WESNOTH.glob("*.ogg") if sf.info(str(p)).duration >= 80)
    order = np.random.default_rng(13).permutation(len(files))[split == "report" :: 2]
    for i in order:  # dev (and cal) take every other track of one fixed shuffle, report the rest
        name, y, sr = _excerpt(files[i], cache, EXCERPT_OFFSET[split])
        if _covered(y, sr, cache / f"{name}.beats.npy"):
            out.append((name, y, sr))
        if len(out) == n:
            break
    return out + (_chorales(cache, split) if split != "cal" else [])


def _covered(y: np.ndarray, sr: int, path: Path) -> bool:
    """True if librosa's grid spans 80 % of the excerpt (a choir without pulse has no beats)."""
    import suite_editor

    if not path.exists():
        np.save(path, suite_editor.beat_grid(y, sr))
    beats = np.load(path)
    return len(beats) > 16 and beats[-1] - beats[0] >= 0.8 * y.shape[1] / sr


def _excerpt(path: Path, cache: Path, offset: float) -> tuple[str, np.ndarray, int]:
    """(name, y [C, L], sr) of the excerpt starting ``offset`` into the track."""
    import soundfile as sf

    tag = "" if offset == 0.25 else f"_at{round(100 * offset)}"
    wav = cache / f"{path.stem}{tag}.wav"
    if not wav.exists():
        y, sr = sf.read(str(path), always_2d=True)
        s = int(offset * len(y))
        sf.write(str(wav), y[s : s + int(EXCERPT_SEC * sr)], sr)
    y, sr = sf.read(str(wav), always_2d=True, dtype="float32")
    return path.stem.replace("-", "_") + tag, y.T, sr


def _chorales(cache: Path, split: str) -> list[tuple[str, np.ndarray, int]]:
    """Bach chorales through fluidsynth, or none (with a message) where music21 is missing."""
    import soundfile as sf

    try:
        import music21
    except ImportError:
        print("label_suite: music21 not importable; skipping the music21 source", file=sys.stderr)
        return []
    if not SOUNDFONT.exists():
        print(f"label_suite: {SOUNDFONT} missing; skipping music21", file=sys.stderr)
        return []
    out = []
    for piece in CHORALES[split == "report" :: 2]:
        name = piece.replace("/", "_").replace(".", "_")
        wav = cache / f"{name}.wav"
        if not wav.exists():
            mid = cache / f"{name}.mid"
            music21.corpus.parse(piece).write("midi", fp=str(mid))
            cmd = ["fluidsynth", "-ni", "-F", str(wav), "-r", "44100", str(SOUNDFONT), str(mid)]
            subprocess.run(cmd, check=True, capture_output=True)
        y, sr = sf.read(str(wav), always_2d=True, dtype="float32")
        out.append((name, y[: int(EXCERPT_SEC * sr)].T, sr))
    return out


def real_pairs(work: Path, cache: Path, split: str, n: int, clean: bool) -> list[Path]:
    """Seed-layout folders, one pair each, edited by the independent editor."""
    import soundfile as sf
    import suite_editor

    base = EDIT_SEED_BASE[split]
    out = []
    for k, (name, y, sr) in enumerate(real_tracks(cache, split, n)):
        d = work / f"real_{split}_{'clean' if clean else 'exported'}" / name
        out.append(d)
        if (d / "truth.json").exists():
            continue
        rng = np.random.default_rng(base + k)
        beats = (
            np.load(cache / f"{name}.beats.npy")
            if (cache / f"{name}.beats.npy").exists()
            else suite_editor.beat_grid(y, sr)
        )
        edit = suite_editor.make_edit(y, sr, beats, rng)
        edit = edit if clean else suite_editor.export(edit, rng)
        for sub in ("input", "desired_output"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        sf.write(str(d / "input" / f"{name}_raw.wav"), y.T, sr)
        sf.write(str(d / "desired_output" / f"{name}_edit.wav"), edit.y.T, edit.sr)
        truth = {"beat_times": beats.tolist(), "types": edit.types}
        (d / "truth.json").write_text(json.dumps(truth))
    return out


def label(raw: Path, edit: Path, out: Path, before: bool = False) -> tuple[object, float]:
    """(editorbot's decision list, CPU seconds); ``before``: with the export model off."""
    from editorbot.editing.align_labels import LabelConfig, label_files
    from editorbot.editing.decisions import DecisionList
    from editorbot.editing.labels import ExportConfig

    config = LabelConfig(export=ExportConfig(enabled=not before), method=METHOD)
    t0 = time.process_time()
    if not (SCORE_ONLY and out.exists()):
        label_files(raw, edit, out, config=config)
    return DecisionList.load(out), time.process_time() - t0


def _score_pair(acc: dict, method: str, truth, pred, real: bool) -> None:
    from editorbot.evaluation.label_metrics import LabelScores

    acc.setdefault(method, LabelScores()).add(truth, _read(truth, pred, real))


def _read(truth, pred, real: bool):
    """``pred`` on the truth's grid, in the truth's names where they render the same audio."""
    from editorbot.evaluation.label_metrics import on_grid

    if not real:
        return on_grid(pred, truth.beat_times)
    return _as_truth_where_same(truth, on_grid(_same_audio(pred), truth.beat_times))


def _as_truth_where_same(truth, read):
    """``read`` (labels on the truth's grid) with the truth's names where both readings render
    the same audio: the editor's KEEP of n beats then REPEAT_PREV of n plays those n beats
    twice and skips the next n, exactly as a LOOP x2 of the n beats and a CUT of the next n."""
    from editorbot.editing.actions import ActionAmount, ActionType
    from editorbot.editing.actions import amount_value as value
    from editorbot.evaluation.label_metrics import BeatLabels

    t, labels = truth.labels[:, 0], read.labels.copy()
    runs, i = [], 0
    while i < len(t):
        j = i
        while j < len(t) and t[j] == t[i]:
            j += 1
        runs.append((int(t[i]), i, j))
        i = j
    for (ta, a0, a1), (tb, b0, b1) in itertools.pairwise(runs):
        if (ta, tb) != (ActionType.KEEP, ActionType.REPEAT_PREV) or a1 - a0 != b1 - b0:
            continue
        loop = labels[a0:a1]
        twice = all(
            r[0] == ActionType.LOOP and value(ActionType.LOOP, ActionAmount(int(r[2]))) == 2
            for r in loop
        )
        if twice and (labels[b0:b1, 0] == ActionType.CUT).all():
            labels[a0:b1, 0] = t[a0:b1]
    return BeatLabels(read.beat_times, labels, read.events)


def _same_audio(pred):
    """The real-music truth's names for readings that render the same audio: a SKIP removes
    beats as a CUT does, and a JUMP_BACK by k beats of the k beats just played is a LOOP."""
    from editorbot.editing.actions import SIZE_BEATS, ActionAmount, ActionSize, ActionType
    from editorbot.editing.actions import amount_value as value
    from editorbot.evaluation.label_metrics import BeatLabels

    labels = pred.labels.copy()
    labels[labels[:, 0] == ActionType.SKIP, 0] = ActionType.CUT
    keep = []
    for ev in pred.events:
        b, t, size, amount = (int(x) for x in ev)
        n = SIZE_BEATS[ActionSize(size)]
        k = int(value(ActionType(t), ActionAmount(amount))) if t == ActionType.JUMP_BACK else -1
        if k == n and b >= n and (labels[b - n : b, 0] == ActionType.KEEP).all():
            labels[b - n : b, 0] = ActionType.LOOP
        else:
            keep.append(ev)
    return BeatLabels(pred.beat_times, labels, np.array(keep, dtype=int).reshape(-1, 4))


def run_demo(acc: dict, timing: dict, folder: Path, log: bool) -> None:
    """Label every pair of one demo-data folder with the three methods."""
    from editorbot.editing.decisions import DecisionList
    from editorbot.evaluation.label_metrics import beat_labels

    for truth_path in sorted((folder / "truth").glob("*.json")):
        name = truth_path.stem
        raw_p = folder / "input" / f"{name}_raw.wav"
        edit_p = folder / "desired_output" / f"{name}_edit.wav"
        truth = beat_labels(DecisionList.load(truth_path))
        pred_p = folder / "pred" / f"{name}.json"
        _three(acc, timing, truth, (raw_p, edit_p, pred_p), log, name, real=False)


def run_real(acc: dict, timing: dict, folder: Path, log: bool) -> None:
    from editorbot.editing.actions import ActionType
    from editorbot.evaluation.label_metrics import BeatLabels

    t = json.loads((folder / "truth.json").read_text())
    types = np.array([int(ActionType[x]) for x in t["types"]])
    labels = np.stack([types, np.zeros_like(types), np.full_like(types, 2)], axis=1)
    truth = BeatLabels(np.asarray(t["beat_times"]), labels, np.zeros((0, 4), dtype=int))
    name = folder.name
    raw_p = folder / "input" / f"{name}_raw.wav"
    edit_p = folder / "desired_output" / f"{name}_edit.wav"
    _three(acc, timing, truth, (raw_p, edit_p, folder / "pred.json"), log, name, real=True)


def _three(acc, timing, truth, paths, log, name, real) -> None:
    """Score editorbot's labeller, DTW and keep-all on one pair."""
    import soundfile as sf
    from baselines_label import dtw_labels, keep_all

    from editorbot.evaluation.label_metrics import LabelScores

    raw_p, edit_p, pred_p = paths
    minutes = sf.info(str(raw_p)).duration / 60
    pred, cpu = _labelled(raw_p, edit_p, pred_p, truth, name, before=False)
    if pred_p.exists():
        _reliability(timing, truth, pred, _decision_confidence(pred_p), real)
    if BEFORE:
        old, old_cpu = _labelled(raw_p, edit_p, pred_p.with_suffix(".before.json"), truth, name,
                                 before=True)  # fmt: skip
        _score_pair(acc, "editorbot-before", truth, old, real)
        timing["editorbot-before"] = timing.get("editorbot-before", 0.0) + old_cpu
    t0 = time.process_time()
    base = dtw_labels(raw_p, edit_p, truth.beat_times)
    dtw_cpu = time.process_time() - t0
    for method, p in (("editorbot", pred), ("dtw", base), ("keep-all", keep_all(truth.beat_times))):
        _score_pair(acc, method, truth, p, real)
    timing["minutes"] = timing.get("minutes", 0.0) + minutes
    timing["editorbot"] = timing.get("editorbot", 0.0) + cpu
    timing["dtw"] = timing.get("dtw", 0.0) + dtw_cpu
    if log:
        one = LabelScores()
        one.add(truth, _read(truth, pred, real))
        print(f"{name}: type acc {one.summary()['type_accuracy']:.3f} "
              f"({cpu:.0f} CPU-s)", file=sys.stderr)  # fmt: skip


RELIABILITY_BINS = (0.0, 0.5, 0.7, 0.9, 1.0001)
"""[confidence] bin edges of the reliability table (the issue's claim is about >= 0.9)."""


def _decision_index(dl) -> np.ndarray:
    """[shape=(N,)] the index of the decision that consumed each beat of the prediction's own
    grid (-1 where no decision did: beats the renderer keeps by default)."""
    from editorbot.editing.actions import initial_state, keep_until, step

    which = np.full(len(dl.beat_times), -1)
    state = initial_state(len(dl.beat_times), downbeat_phase=dl.downbeat_phase)
    for k, d in enumerate(dl.decisions):
        state, _ = keep_until(state, d.beat)
        before = state.cursor
        state, _ = step(state, d.type, d.size, d.amount)
        which[before : state.cursor] = k
    return which


def _decision_confidence(pred_p: Path) -> np.ndarray:
    """[shape=(N,)] the confidence of the decision that consumed each beat of the prediction's
    own grid (NaN where no decision did)."""
    from editorbot.editing.decisions import DecisionList

    dl = DecisionList.load(pred_p)
    conf = np.array([d.confidence for d in dl.decisions] + [np.nan])  # index -1: NaN
    return conf[_decision_index(dl)]


def _outcomes(truth, pred, real: bool) -> tuple[np.ndarray, np.ndarray]:
    """(index of the predicted beat holding each true beat's midpoint [shape=(T,)], whether
    the truth's type was read there [shape=(T,), bool]), as the score looks them up."""
    read = _read(truth, pred, real)
    times = np.asarray(truth.beat_times, dtype=float)
    period = np.diff(times, append=times[-1] + np.median(np.diff(times)))
    idx = np.searchsorted(pred.beat_times, times + 0.5 * period, side="right") - 1
    right = read.labels[:, 0] == truth.labels[:, 0]
    return np.clip(idx, 0, len(pred.beat_times) - 1), right


def _reliability(timing: dict, truth, pred, conf: np.ndarray, real: bool) -> None:
    """Count, per confidence bin, the truth's beats and how many the labeller got right (each
    true beat takes the confidence of the predicted beat holding its midpoint, as the score)."""

    if len(conf) != len(pred.beat_times):
        return  # the labeller failed on this pair; its old file is not this prediction
    idx, right = _outcomes(truth, pred, real)
    c = conf[idx]
    rel = timing.setdefault("reliability", np.zeros((len(RELIABILITY_BINS) - 1, 2)))
    k = np.digitize(c[~np.isnan(c)], RELIABILITY_BINS) - 1
    np.add.at(rel, (k, 0), 1)
    np.add.at(rel, (k, 1), right[~np.isnan(c)])


def _labelled(raw_p, edit_p, pred_p, truth, name, *, before: bool) -> tuple:
    """(BeatLabels, CPU s) of one labelling; a refused pair scores as all-unmatched."""
    from baselines_label import keep_all

    from editorbot.evaluation.label_metrics import beat_labels

    try:
        dl, cpu = label(raw_p, edit_p, pred_p, before=before)
        return beat_labels(dl), cpu
    except Exception as e:
        print(f"{name}: labeller failed: {e}", file=sys.stderr)
        return keep_all(truth.beat_times[:1] + 1e6), 0.0


def summarise(acc: dict, timing: dict) -> dict:
    out = {}
    for method, scores in acc.items():
        s = scores.summary()
        recall = {k: round(v["recall"], 3) for k, v in s["per_type"].items() if v["support"]}
        out[method] = {
            "type_accuracy": round(s["type_accuracy"], 3),
            "structural_accuracy": round(s["structural_accuracy"], 3),
            "effect_macro_f1": round(s["effect_macro_f1"], 3),
            "n_beats": s["n_beats"],
            "recall": recall,
        }
    if "reliability" in timing:
        rel = timing["reliability"]
        out["reliability"] = [
            {"confidence": f"{lo:.1f}-{min(hi, 1.0):.1f}", "n_beats": int(n),
             "accuracy": round(float(r / n), 3) if n else None}
            for lo, hi, (n, r) in zip(RELIABILITY_BINS[:-1], RELIABILITY_BINS[1:], rel, strict=True)
        ]  # fmt: skip
    m = max(timing.get("minutes", 0.0), 1e-9)
    out["cpu_s_per_min"] = {
        k: round(timing.get(k, 0.0) / m, 2) for k in ("editorbot", "editorbot-before", "dtw")
    }
    return out


def table(name: str, res: dict) -> str:
    lines = [f"### {name}", "", "| method | type acc | structural | effect F1 | per-type recall |",
             "|---|---|---|---|---|"]  # fmt: skip
    for method in ("editorbot", "editorbot-before", "dtw", "keep-all"):
        if method not in res:
            continue
        r = res[method]
        per = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["recall"].items()))
        lines.append(f"| {method} | {r['type_accuracy']:.3f} | {r['structural_accuracy']:.3f} | "
                     f"{r['effect_macro_f1']:.3f} | {per} |")  # fmt: skip
    c = res["cpu_s_per_min"]
    lines.append(f"\nCPU-s per minute of raw audio: {c}")
    if "reliability" in res:
        lines += ["", "| editorbot confidence | beats | right |", "|---|---|---|"]
        for r in res["reliability"]:
            acc = "—" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
            lines.append(f"| {r['confidence']} | {r['n_beats']} | {acc} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", choices=("dev", "report", "cal"), required=True)
    p.add_argument("--quick", action="store_true", help="1 seed x 3 styles x 2 short songs")
    p.add_argument("--seeds", type=int, choices=(1, 2, 3), default=None,
                   help="demo seeds of the split (default: 1 with --quick, else 3)")  # fmt: skip
    p.add_argument("--sources", default="demo,real", help="comma list of demo, real")
    p.add_argument("--tracks", type=int, default=6, help="real-music excerpts per split")
    p.add_argument("--clean", action="store_true", help="real edits not exported")
    p.add_argument("--work", type=Path, default=Path("/tmp/label_suite"))
    p.add_argument("--cache", type=Path, default=Path("/tmp/label_suite_cache"))
    p.add_argument("--out", type=Path, default=None, help="JSON summary")
    p.add_argument("--before", action="store_true", help="also the labeller without export model")
    p.add_argument("--method", choices=("auto", "alignment", "global"), default="auto",
                   help="LabelConfig.method: which labeller runs")  # fmt: skip
    p.add_argument("--score-only", action="store_true",
                   help="score the predictions already in --work (no labelling)")  # fmt: skip
    args = p.parse_args(argv)
    if args.split == "cal" and args.sources != "real":
        p.error("--split cal is real music only: add --sources real")
    log = args.split != "report"  # the report split shows totals only
    global SCORE_ONLY, BEFORE, METHOD
    SCORE_ONLY, BEFORE, METHOD = args.score_only, args.before, args.method
    results = {}
    sources = args.sources.split(",")
    if "demo" in sources:
        by_style: dict[str, tuple[dict, dict]] = {}
        for style, folder in demo_pairs(args.work, args.split, args.quick, args.seeds):
            acc, timing = by_style.setdefault(style, ({}, {}))
            run_demo(acc, timing, folder, log)
        for style, (acc, timing) in by_style.items():
            results[f"demo {style}"] = summarise(acc, timing)
    if "real" in sources:
        acc, timing = {}, {}
        for folder in real_pairs(args.work, args.cache, args.split, args.tracks, args.clean):
            run_real(acc, timing, folder, log)
        results["real " + ("clean" if args.clean else "exported")] = summarise(acc, timing)
    size = "quick" if args.quick else "full"
    for name, res in results.items():
        sized = f", {size} size" if name.startswith("demo") else f", {args.tracks} tracks"
        print(table(f"{name} ({args.split} split{sized})", res) + "\n")
    if args.out:
        args.out.write_text(json.dumps({"split": args.split, "size": size, **results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
