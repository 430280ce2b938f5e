"""Label accuracy on real music: random decision lists rendered on real tracks, then labelled.

Issue 4 measures the alignment on demo songs, whose edits the generator knows; here the raw
tracks are real recordings (by default Debian's ``wesnoth-1.16-music``, Ogg Vorbis, CC BY-SA /
GPL, not committed: ``apt-get install wesnoth-1.16-music``). For each picked track:

1. its beats are tracked (``editorbot.audio.beats.track_beats``, the grid a user gets);
2. a random valid decision list is drawn with the ``augment`` sampler (every type the state
   machine allows about equally likely, KEEP rarer) and rendered with the renderer; raw, edit
   and the true decision list are written in the seed layout (``augment_track``);
3. ``editorbot labels`` (no ``--grid-from``: the tracked grid) and ``editorbot evaluate-labels
   --json`` run on the folder, as a user would run them.

The truth's beat grid is the tracked one, so this measures the aligner on real timbres and
arrangements (reverberant recordings, soft onsets, rubato), not the beat tracker's agreement
with a human's sense of the beat, which no truth here could give.

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/eval_real_music.py --work /tmp/realmusic \
        [--tracks 20] [--seed 0] [--min-seconds 60] [--max-seconds 240] [--num-cpus 2] \
        [--excerpt-seconds 60]

What to expect: the chosen tracks (name, duration, beats, decisions) on stderr as they are
rendered, then one JSON object on stdout: evaluate-labels' summary (``type_accuracy``,
``structural_accuracy``, ``effect_macro_f1``, ``amount_accuracy``, ``per_type``, ...) plus
``tracks`` and ``label_seconds`` (wall time of the labels command). Labelling takes about
1-3 minutes per track per core. Re-running with the same ``--work`` reuses rendered pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

DEFAULT_MUSIC = Path("/usr/share/games/wesnoth/1.16/data/core/music")
"""Where Debian's ``wesnoth-1.16-music`` puts its tracks."""
EXTENSIONS = (".ogg", ".flac", ".wav", ".mp3")
"""Audio files looked for in ``--music-dir``."""


def pick_tracks(
    music_dir: Path, *, n: int, min_seconds: float, max_seconds: float, seed: int
) -> list[tuple[Path, float]]:
    """``n`` tracks whose duration lies in ``[min_seconds, max_seconds]``, drawn at random.

    Returns:
        (path, duration [s]) pairs in name order.

    Raises:
        DatasetError: fewer than ``n`` tracks qualify.
    """
    import numpy as np
    import soundfile as sf

    from editorbot.errors import DatasetError

    files = sorted(p for p in music_dir.glob("*") if p.suffix.lower() in EXTENSIONS)
    fits = []
    for p in files:
        seconds = sf.info(str(p)).duration
        if min_seconds <= seconds <= max_seconds:
            fits.append((p, float(seconds)))
    if len(fits) < n:
        raise DatasetError(
            f"{music_dir}: {len(fits)} tracks of {min_seconds:.0f}-{max_seconds:.0f} s, need {n}; "
            "widen --min-seconds/--max-seconds or lower --tracks"
        )
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(fits), size=n, replace=False)
    return sorted((fits[int(i)] for i in chosen), key=lambda f: f[0].name)


def render_pairs(
    tracks: list[tuple[Path, float]], work: Path, *, seed: int, excerpt: float | None = None
) -> None:
    """Track beats, draw and render one random decision list per track, write the seed layout.

    ``excerpt`` [s]: use only that long a stretch from the middle of each track (None: all).
    """
    import numpy as np

    from editorbot.audio.beats import track_beats
    from editorbot.audio.io import Audio, AudioConfig, analysis_signal, load_audio
    from editorbot.datasets.augment import augment_track
    from editorbot.editing.decisions import DecisionList

    for k, (path, seconds) in enumerate(tracks):
        name = path.stem.replace("-", "_")
        truth = work / "truth" / f"{name}_aug00.json"
        if truth.exists():  # a re-run reuses what an earlier one rendered
            continue
        rng = np.random.default_rng([seed, k])  # per track: a re-run draws the same lists
        raw = load_audio(path)
        if excerpt is not None and excerpt < raw.duration_sec:
            n = int(excerpt * raw.sr)
            start = (raw.n_samples - n) // 2
            raw = Audio(np.ascontiguousarray(raw.y[:, start : start + n]), raw.sr)
            seconds = excerpt
        grid = track_beats(analysis_signal(raw), sr=AudioConfig().analysis_sr, name=str(path))
        augment_track(
            raw, name=name, beat_times=grid.beat_times, downbeat_phase=grid.downbeat_phase,
            out_dir=work, n_pairs=1, rng=rng,
        )  # fmt: skip
        n_dec = len(DecisionList.load(truth).decisions)
        bpm = 60.0 / float(np.median(np.diff(grid.beat_times)))
        print(
            f"{name}: {seconds:.0f} s, {len(grid.beat_times)} beats ({bpm:.0f} BPM), "
            f"{n_dec} decisions",
            file=sys.stderr,
        )


def _editorbot(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "editorbot"
    return subprocess.run([str(exe), *args], check=True, capture_output=True, text=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--music-dir", type=Path, default=DEFAULT_MUSIC)
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (pairs, labels)")
    parser.add_argument("--tracks", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-seconds", type=float, default=60.0)
    parser.add_argument("--max-seconds", type=float, default=240.0)
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs for Ray (default all)")
    parser.add_argument(
        "--excerpt-seconds", type=float, default=None,
        help="label only this long a stretch from each track's middle (default: whole track)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    tracks = pick_tracks(
        args.music_dir, n=args.tracks, min_seconds=args.min_seconds,
        max_seconds=args.max_seconds, seed=args.seed,
    )  # fmt: skip
    render_pairs(tracks, args.work, seed=args.seed, excerpt=args.excerpt_seconds)
    labels = args.work / "labels"
    cpus = ["--num-cpus", str(args.num_cpus)] if args.num_cpus else []
    t0 = time.perf_counter()
    done = _editorbot("labels", "--data-dir", str(args.work), "--out", str(labels),
                      "--no-progress", *cpus)  # fmt: skip
    label_seconds = time.perf_counter() - t0
    print(done.stdout.strip(), done.stderr.strip(), sep="\n", file=sys.stderr)
    scored = _editorbot("evaluate-labels", "--pred", str(labels), "--truth",
                        str(args.work / "truth"), "--json")  # fmt: skip
    summary = json.loads(scored.stdout)
    summary["tracks"] = [{"name": p.name, "seconds": round(s, 1)} for p, s in tracks]
    summary["label_seconds"] = round(label_seconds, 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
