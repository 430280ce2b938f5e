"""Learn a house style from real music: the end-to-end promise of issue 19, measured.

Real tracks (the label suite's dev half of Debian's ``wesnoth-1.16-music``, 15 tracks, and, where
``music21`` imports, 24 pieces of its corpus through fluidsynth: the label suite's loaders,
:mod:`label_suite`; none of its report split) are edited by the
independent house-style editors of :mod:`house_styles` and exported as a person would
(:func:`suite_editor.export`: crossfades, peak -1 dBFS, MP3 round trip, some at 48 kHz). Per
style and training size N, as a user would run editorbot:

1. ``editorbot labels`` on the N training pairs (the inferred decision lists);
2. ``editorbot train rl`` on them (``rl``), and on the true decisions written as decision lists
   (``rl_truth``: what the labels cost), and BC alone on the truth (``bc_truth``, PPO iterations
   0: does PPO add anything?);
3. ``editorbot train supervised --tiny`` on the inferred labels (``supervised``);
4. ``editorbot evaluate`` of the three against the true decisions of held-out tracks (never
   trained or validated on), with its keep-all and majority baselines, and the style's own rule
   run on the grid the learners see (``rule``: the upper reference).

Excerpts are decoded once and cached under ``--cache``; pairs, labels and runs go to ``--work``
(a re-run reuses finished steps). Every RL run uses ``tune_configs/bc_eval.yaml`` with the run's
own split changed to validate on a fifth of the N tracks and test on none (the benchmark's
held-out tracks are the test).

How to run::

    PYTHONPATH=/tmp/h19_pylib OMP_NUM_THREADS=1 .venv/bin/python benchmarks/real_style.py \
        --quick --work /tmp/real_style

What to expect: one line per step on stderr; a markdown table per style (type agreement,
effect F1, duration error, log-mel L1 of every system per N) on stdout; ``--out`` (default
``WORK/real_style.json``) gets the JSON and ``real_style.png`` beside it the learning curves.
The quick size (N = 5, 3 held-out tracks of 40 s, 10 PPO iterations) takes about 15 minutes on
2 busy cores; the full size (N = 5, 10, 20, 8 held-out tracks of 60 s, 30 PPO iterations)
about two hours.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RL_CONFIG = ROOT / "tune_configs" / "bc_eval.yaml"
SUP_CONFIG = ROOT / "tune_configs" / "supervised_long.yaml"
SYSTEMS = ("rl", "rl_truth", "bc_truth", "supervised", "keep_all", "majority", "rule")
"""Table rows, in order."""
COLUMNS = ("type_accuracy", "effect_macro_f1", "duration_ratio_error", "log_mel_l1", "keep_share")
"""Table columns: evaluate's metrics, plus the share of held-out beats the system keeps."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


MUSIC21 = (
    "joplin/maple_leaf_rag", "mozart/k155/movement1", "mozart/k155/movement3",
    "haydn/opus1no1/movement1", "haydn/opus1no1/movement4",
    "bach/bwv66.6", "bach/bwv347", "bach/bwv1.6", "bach/bwv10.7", "bach/bwv101.7",
    "bach/bwv102.7", "bach/bwv103.6", "bach/bwv104.6", "bach/bwv108.6", "bach/bwv11.6",
    "bach/bwv110.7", "bach/bwv111.6", "bach/bwv113.8", "bach/bwv114.7", "bach/bwv115.6",
    "bach/bwv116.6", "bach/bwv117.4", "bach/bwv119.9", "bach/bwv12.7",
)  # fmt: skip
"""music21 corpus pieces rendered through fluidsynth (the first 40-60 s of each): the label
suite's dev chorales and pieces it does not use (its report split's appear nowhere else).
Checked to end: fluidsynth renders mozart/k155/movement2 and k80/movement1 without end (a note
left on), so they are not here."""


def load_tracks(cache: Path, excerpt_sec: float, n: int) -> list[tuple[str, np.ndarray, int]]:
    """The first ``n`` usable excerpts (name, y [C, L], sr) of one fixed shuffle of wesnoth's
    tracks (the label suite's dev half) and :data:`MUSIC21`, so a larger ``n`` extends a smaller
    one's list; usable: librosa's beat grid (cached as ``NAME.beats.npy``) covers it."""
    import label_suite
    import soundfile as sf

    label_suite.EXCERPT_SEC = excerpt_sec
    cache = cache / f"{excerpt_sec:.0f}s"
    cache.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in label_suite.WESNOTH.glob("*.ogg") if sf.info(str(p)).duration >= 80)
    dev = np.random.default_rng(13).permutation(len(files))[0::2]  # as label_suite splits them
    candidates: list[Any] = [*(files[i] for i in sorted(dev)), *MUSIC21]
    rendered: dict[str, tuple[str, np.ndarray, int]] | None = None
    out = []
    for i in np.random.default_rng(19).permutation(len(candidates)):
        if len(out) == n:
            break
        if isinstance(candidates[i], Path):
            track = label_suite._excerpt(candidates[i], cache)
        else:
            rendered = _music21(cache) if rendered is None else rendered
            track = rendered.get(candidates[i])
        if track and label_suite._covered(track[1], track[2], cache / f"{track[0]}.beats.npy"):
            out.append(track)
    if len(out) < n:
        raise SystemExit(f"real_style: {len(out)} usable tracks, need {n}; lower --sizes")
    return out


def _music21(cache: Path) -> dict[str, tuple[str, np.ndarray, int]]:
    """:data:`MUSIC21` by name, rendered by the label suite's chorale renderer, or none with one
    message where music21 does not import."""
    import label_suite

    try:
        import music21  # noqa: F401
    except ImportError:
        log("music21 not importable (PYTHONPATH=/tmp/h19_pylib?); skipping the music21 source")
        return {}
    log(f"rendering {len(MUSIC21)} music21 pieces (once; cached)")
    saved, label_suite.CHORALES = label_suite.CHORALES, MUSIC21  # its renderer, our pieces
    try:  # its two splits take the even and the odd pieces: both are all of ours
        out = label_suite._chorales(cache, "dev") + label_suite._chorales(cache, "report")
    finally:
        label_suite.CHORALES = saved
    return dict(zip([*MUSIC21[0::2], *MUSIC21[1::2]], out, strict=True))


def write_pairs(style: str, tracks: list, folder: Path, cache: Path, seed: int) -> None:
    """Seed layout of ``style``'s exported edits in ``folder`` and its truth in ``folder/truth``."""
    import house_styles
    import soundfile as sf
    import suite_editor

    for k, (name, y, sr) in enumerate(tracks):
        truth = folder / "truth" / f"{name}.json"
        if truth.exists():
            continue
        rng = np.random.default_rng([seed, k])
        beats = np.load(cache / f"{name}.beats.npy")
        steps = house_styles.STYLES[style](y, sr, beats)
        edit = suite_editor.export(house_styles.render(y, sr, beats, steps, rng), rng)
        for sub in ("input", "desired_output", "truth"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        sf.write(str(folder / "input" / f"{name}_raw.wav"), y.T, sr)
        sf.write(str(folder / "desired_output" / f"{name}_edit.wav"), edit.y.T, edit.sr)
        as_decision_list(steps, beats, sr, meta={"source": f"house_style:{style}"}).save(truth)


def as_decision_list(steps: list, beat_times: np.ndarray, sr: int, *, meta: dict) -> Any:
    """A style's steps as editorbot's decision list on ``beat_times`` (checked by its masks)."""
    from editorbot.editing.actions import SIZE_BEATS, ActionAmount, ActionSize, ActionType
    from editorbot.editing.decisions import Decision, DecisionList

    size = {n: s for s, n in SIZE_BEATS.items()}
    decisions = tuple(
        Decision(s.beat, ActionType[s.type], ActionSize(size[s.n_beats]), ActionAmount[s.amount])
        for s in sorted(steps, key=lambda s: s.beat)
    )
    dl = DecisionList(sr, np.asarray(beat_times, dtype=float), decisions, meta=meta)
    dl.validate(len(beat_times))
    return dl


def editorbot(log_path: Path, *args: str) -> str:
    """Run one editorbot command (its own process, its own Ray); stdout, or exit on failure."""
    exe = Path(sys.executable).parent / "editorbot"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    done = subprocess.run([str(exe), *args], capture_output=True, text=True)
    log_path.write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"real_style: editorbot {args[0]} failed, see {log_path}:\n"
                         + done.stderr[-2000:])  # fmt: skip
    log(f"editorbot {' '.join(args[:2])} ... ({time.perf_counter() - t0:.0f} s)")
    return done.stdout


def rl_config(work: Path) -> Path:
    """bc_eval.yaml with the run's split changed: validate on a fifth, test on nothing."""
    import yaml

    cfg = yaml.safe_load(RL_CONFIG.read_text())
    cfg |= {"validation_fraction": 0.2, "test_fraction": 0.0}
    path = work / "rl_config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def subset(pool: Path, names: list[str], labels: Path | None, out: Path) -> None:
    """``out``: a seed layout of ``names`` (links into ``pool``) and their lists from ``labels``
    (if given) in ``out/labels``."""
    if labels is not None and (gone := [n for n in names if not (labels / f"{n}.json").exists()]):
        log(f"{labels}: no decision list for {gone} (the labeller skipped them); left out")
        names = [n for n in names if n not in gone]
    if out.exists():
        shutil.rmtree(out)
    for sub, suffix in (("input", "_raw.wav"), ("desired_output", "_edit.wav")):
        (out / sub).mkdir(parents=True)
        for n in names:
            (out / sub / f"{n}{suffix}").symlink_to((pool / sub / f"{n}{suffix}").resolve())
    if labels is None:
        return
    (out / "labels").mkdir()
    for n in names:
        shutil.copy(labels / f"{n}.json", out / "labels" / f"{n}.json")


def train_size(style_dir: Path, names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Train every learner on the first N pool pairs; evaluate them on the held-out tracks."""
    run = style_dir / f"n{len(names):02d}"
    logs = run / "logs"
    pool, test = style_dir / "pool", style_dir / "test"
    subset(pool, names, style_dir / "inferred", run / "inferred")
    subset(pool, names, pool / "truth", run / "truth")
    runs = {
        "rl": (run / "inferred", args.ppo_iters),
        "rl_truth": (run / "truth", args.ppo_iters),
        "bc_truth": (run / "truth", 0),
    }
    for name, (data, iters) in runs.items():
        if not (run / name / "best").exists():
            editorbot(logs / f"{name}.log", "train", "rl", "--config", str(args.rl_cfg),
                      "--data-dir", str(data), "--labels", str(data / "labels"),
                      "--save-dir", str(run / name), "--stop-iters", str(iters),
                      "--checkpoint-freq", str(max(iters, 1)))  # fmt: skip
    if not (run / "supervised" / "best").exists():
        editorbot(logs / "supervised.log", "train", "supervised", "--tiny", "--config",
                  str(SUP_CONFIG), "--epochs", str(args.sup_epochs), "--checkpoint-every",
                  str(args.sup_epochs), "--data-dir",
                  str(run / "inferred"), "--labels", str(run / "inferred" / "labels"),
                  "--save-dir", str(run / "supervised"))  # fmt: skip
    ckpts = [str(run / n / "best") for n in (*runs, "supervised")]
    if not (run / "eval" / "metrics.json").exists():
        editorbot(logs / "evaluate.log", "evaluate", "--data-dir", str(test), "--labels",
                  str(test / "truth"), "--out", str(run / "eval"),
                  *[a for c in ckpts for a in ("--checkpoint", c)])  # fmt: skip
    evaluated = json.loads((run / "eval" / "metrics.json").read_text())
    names_in_eval = {"rl": "rl", "rl_2": "rl_truth", "rl_3": "bc_truth", "supervised": "supervised"}
    systems = {names_in_eval.get(k, k): v for k, v in evaluated["systems"].items()}
    systems["rule"] = score_rule(style_dir.name, test, run / "eval_rule")
    row = {s: _row(systems[s]) for s in SYSTEMS}
    row["diagnosis"] = diagnose(run, logs, runs)
    return row


def score_rule(style: str, test: Path, out: Path) -> dict[str, Any]:
    """The style's own rule on the tracked grid of each held-out track, scored as evaluate
    scores a system (its private scorer: one definition of every metric)."""
    import house_styles

    from editorbot.audio.io import load_audio
    from editorbot.datasets.pairs import discover_pairs
    from editorbot.editing.decisions import DecisionList
    from editorbot.evaluation import metrics, report

    systems = {"rule": report._System()}
    for pair in discover_pairs(test):
        grid = report._tracked_grid(pair)
        raw = load_audio(pair.raw)
        steps = house_styles.STYLES[style](raw.y, raw.sr, grid.beat_times)
        dl = as_decision_list(steps, grid.beat_times, raw.sr, meta={"source": "rule"})
        ref = DecisionList.load(test / "truth" / f"{pair.name}.json")
        report._score_pair(pair, ref, {"rule": dl}, systems, out, {}, metrics.MetricsConfig())
    return report._summary(systems["rule"])


def _row(summary: dict[str, Any]) -> dict[str, float]:
    """The table's numbers of one system (``keep_share``: its KEEP beats / all held-out)."""
    from editorbot.editing.actions import ActionType

    C = np.asarray(summary["confusion"])
    row = {k: round(float(summary[k]), 3) for k in COLUMNS if k in summary}
    row["keep_share"] = round(float(C[:, int(ActionType.KEEP)].sum() / max(C.sum(), 1)), 3)
    return row


def diagnose(run: Path, logs: Path, runs: dict[str, Any]) -> dict[str, Any]:
    """What is missing: the inferred labels' accuracy on the training pairs, and per RL run the
    iteration best/ holds (0 = the BC start) and BC's validation agreement."""
    from editorbot.inference.rl import CHECKPOINT_JSON

    out = editorbot(logs / "evaluate_labels.log", "evaluate-labels", "--pred",
                    str(run / "inferred" / "labels"), "--truth", str(run / "truth" / "labels"),
                    "--json", "--png", str(run / "labels_confusion.png"))  # fmt: skip
    labels = json.loads(out)
    d: dict[str, Any] = {"label_type_accuracy": round(labels["type_accuracy"], 3)}
    for name in runs:
        rows = [json.loads(x) for x in (run / name / "progress.jsonl").read_text().splitlines()]
        best = json.loads((run / name / "best" / CHECKPOINT_JSON).read_text())["validation"]
        d[name] = {
            "best_iteration": best["iteration"],
            "best_val": round(best["type_agreement"], 3),
            "bc_val": round(rows[0].get("val_type_agreement", float("nan")), 3),
            "val_curve": [round(r.get("val_type_agreement", float("nan")), 3) for r in rows],
        }
    return d


def run_style(style: str, tracks: list, args: argparse.Namespace) -> dict[str, Any]:
    """Pairs, labels, and every training size of one style."""
    style_dir = args.work / style
    test, pool = tracks[: args.test_tracks], tracks[args.test_tracks :]
    cache = args.cache / f"{args.excerpt_sec:.0f}s"
    write_pairs(style, test, style_dir / "test", cache, seed=1)
    write_pairs(style, pool, style_dir / "pool", cache, seed=0)
    inferred = style_dir / "inferred"
    names = [t[0] for t in pool]
    missing = [n for n in names if not (inferred / f"{n}.json").exists()]
    if missing:  # a larger run labels only the pairs a smaller one did not
        subset(style_dir / "pool", missing, None, style_dir / "to_label")
        editorbot(style_dir / "labels.log", "labels", "--data-dir", str(style_dir / "to_label"),
                  "--out", str(inferred), "--num-cpus", "1", "--no-progress")  # fmt: skip
    result = {}
    for n in args.sizes:
        log(f"{style}: N = {n}")
        result[str(n)] = train_size(style_dir, names[:n], args)
    return result


def table(style: str, res: dict[str, Any]) -> str:
    lines = [f"### {style}", "", "| N | system | " + " | ".join(COLUMNS) + " |",
             "|---|---|" + "---:|" * len(COLUMNS)]  # fmt: skip
    for n, row in res.items():
        for s in SYSTEMS:
            vals = " | ".join(f"{row[s].get(c, float('nan')):.3f}" for c in COLUMNS)
            lines.append(f"| {n} | {s} | {vals} |")
    for n, row in res.items():
        lines.append(f"\nN = {n}: {json.dumps(row['diagnosis'])}")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    """Held-out type agreement against N, one panel per style, one line per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 3.6), squeeze=False)
    for ax, (style, res) in zip(axes[0], results.items(), strict=True):
        ns = [int(n) for n in res]
        for s in SYSTEMS:
            ax.plot(ns, [res[str(n)][s]["type_accuracy"] for n in ns], "o-", label=s)
        ax.set(title=style, xlabel="training pairs N", ylabel="held-out type agreement",
               ylim=(0, 1), xticks=ns)  # fmt: skip
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="N = 5, 3 held-out 40 s tracks")
    p.add_argument("--styles", default="radio,extended,energy")
    p.add_argument("--work", type=Path, default=Path("/tmp/real_style"))
    p.add_argument("--cache", type=Path, default=Path("/tmp/real_style_cache"))
    p.add_argument("--out", type=Path, default=None, help="JSON (default WORK/real_style.json)")
    p.add_argument("--sizes", default=None, help="comma list of N (default 5,10,20; quick 5)")
    p.add_argument("--test-tracks", type=int, default=None, help="held out (default 8; quick 3)")
    p.add_argument("--ppo-iters", type=int, default=None, help="default 30; quick 10")
    args = p.parse_args(argv)
    q = args.quick
    sizes = args.sizes or ("5" if q else "5,10,20")
    args.sizes = tuple(int(n) for n in sizes.split(","))
    args.test_tracks = args.test_tracks or (3 if q else 8)
    args.excerpt_sec = 40.0 if q else 60.0
    args.ppo_iters = args.ppo_iters if args.ppo_iters is not None else (10 if q else 30)
    args.sup_epochs = 12 if q else 24
    args.work.mkdir(parents=True, exist_ok=True)
    args.rl_cfg = rl_config(args.work)
    tracks = load_tracks(args.cache, args.excerpt_sec, args.test_tracks + max(args.sizes))
    log(f"{len(tracks)} tracks: {[t[0] for t in tracks]}")
    out = args.out or args.work / "real_style.json"
    names = [t[0] for t in tracks]
    meta = {"size": "quick" if q else "full", "sizes": list(args.sizes), "tracks": names,
            "test_tracks": names[: args.test_tracks],
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  # fmt: skip
    results: dict[str, Any] = {}
    for style in args.styles.split(","):  # written after each style: a long run's partial result
        results[style] = run_style(style, tracks, args)
        load = [round(x, 2) for x in os.getloadavg()]
        out.write_text(json.dumps({**meta, "load_average": load, "styles": results}, indent=1))
        plot(results, out.with_suffix(".png"))
        print(table(style, results[style]) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
