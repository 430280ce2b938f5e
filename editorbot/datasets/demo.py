"""The demo-data generator: procedural songs, edited in a known style, with the true edit.

For each track it composes and synthesises a song (:mod:`editorbot.datasets.song`,
:mod:`editorbot.datasets.perform`), measures the level of every bar, lets an editor style
(:mod:`editorbot.datasets.styles`) write a decision list, renders it with the one renderer
(:func:`editorbot.editing.render.render`), and writes the seed layout::

    DIR/input/X_raw.wav             the raw track (float WAV: read back bit-exact)
    DIR/desired_output/X_edit.wav   the edit
    DIR/truth/X.json                the decision list, with the exact beat_times and, in meta,
                                    style, tempo, key, scale and sections

Rendering ``X_raw.wav`` with ``X.json`` reproduces ``X_edit.wav`` sample for sample, and the
alignment can be scored against the truth per action type.

How to run: ``editorbot demo-data --out d --tracks 3 --seed 0`` (see
:mod:`editorbot.commands.demo_data`).

What to expect: about 1 s of synthesis and well under a few seconds of rendering per 3-minute
track on one core; a seed always gives the same files.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from editorbot.audio.io import write_audio
from editorbot.datasets.perform import synthesize
from editorbot.datasets.song import BEATS_PER_BAR, Song, SongConfig, SynthResult, compose
from editorbot.datasets.styles import STYLES, EditContext, plan_edit
from editorbot.editing.decisions import DecisionList, decisions_from_actions
from editorbot.editing.render import RenderConfig, render
from editorbot.errors import ParameterError

logger = logging.getLogger(__name__)

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass(frozen=True)
class DemoConfig:
    """What the generator makes."""

    song: SongConfig = field(default_factory=SongConfig)
    """ranges songs are drawn from (tempo, duration, rate)."""
    styles: tuple[str, ...] = tuple(STYLES)
    """names of the editor styles, rotated over tracks."""
    render: RenderConfig = field(default_factory=RenderConfig)
    """how the edits are rendered (the default is what ``editorbot render`` uses)."""

    def __post_init__(self) -> None:
        unknown = [s for s in self.styles if s not in STYLES]
        if unknown or not self.styles:
            raise ParameterError(
                f"unknown style {unknown[0] if unknown else '(none given)'!r}; "
                f"choose from {', '.join(STYLES)}"
            )


@dataclass(frozen=True, eq=False)
class DemoPair:
    """One generated (raw, edit) pair and its truth."""

    name: str
    """file stem X of ``X_raw.wav``, ``X_edit.wav``, ``X.json``."""
    song: Song
    """the composition."""
    raw: SynthResult
    """the raw track and its beat grid."""
    decisions: DecisionList
    """the true edit (with ``beat_times`` and meta)."""
    edit: np.ndarray
    """[shape=(C, L_out)] float32 rendered edit."""


def track_name(seed: int, index: int) -> str:
    """File stem of track ``index`` of seed ``seed`` (seeds never collide in one folder)."""
    return f"demo_s{seed}_{index:03d}"


def make_pair(
    seed: int, index: int, *, style: str | None = None, config: DemoConfig | None = None
) -> DemoPair:
    """Compose, synthesise, edit and render track ``index`` of ``seed``.

    Args:
        seed: the run's seed; with ``index`` it fixes every random choice.
        index: track number; picks the style ``config.styles[index % len]`` unless ``style``.
        style: force one style.
        config: defaults to ``DemoConfig()``.

    Raises:
        ParameterError: unknown style.
    """
    config = config or DemoConfig()
    song, raw, decisions = plan_pair(seed, index, style=style, config=config)
    edit = render(
        raw.y, sr=raw.sr, beat_samples=raw.beat_samples, decisions=decisions, config=config.render
    )
    logger.info(
        "%s: %s, %.1f BPM, %d beats, %d decisions, %.1f s -> %.1f s",
        track_name(seed, index),
        decisions.meta["style"],
        song.bpm,
        song.n_beats,
        len(decisions.decisions),
        raw.y.shape[1] / raw.sr,
        edit.y.shape[1] / raw.sr,
    )
    return DemoPair(track_name(seed, index), song, raw, decisions, edit.y)


def plan_pair(
    seed: int, index: int, *, style: str | None = None, config: DemoConfig | None = None
) -> tuple[Song, SynthResult, DecisionList]:
    """Everything of :func:`make_pair` but the render: the song, the raw track, the true edit."""
    config = config or DemoConfig()
    style = style or config.styles[index % len(config.styles)]
    if style not in STYLES:
        raise ParameterError(f"unknown style {style!r}; choose from {', '.join(STYLES)}")
    rng = np.random.default_rng([seed, index])
    sr = config.song.sr
    song = compose(rng, config=config.song)
    raw = synthesize(song, sr=sr, rng=rng, peak=config.song.peak)
    ctx = EditContext(sections=song.sections, bar_db=bar_levels(raw.y, raw.beat_samples))
    decisions = decisions_from_actions(
        plan_edit(style, ctx, rng),
        n_beats=song.n_beats,
        sample_rate=sr,
        beat_times=raw.beat_samples / sr,  # rounds back to the exact samples at `sr`
        meta={
            **_meta(song, style=style, seed=seed, index=index, bar_db=ctx.bar_db),
            "render": asdict(config.render),  # the edit was rendered with this RenderConfig
        },
    )
    return song, raw, decisions


def bar_levels(y: np.ndarray, beat_samples: np.ndarray) -> np.ndarray:
    """[dB] RMS level of every bar (4 beats from beat 0), [shape=(n_beats // 4,)].

    The last bar ends one beat period after the last beat, so the release tail is not counted.
    """
    C, L = y.shape
    n_bars = len(beat_samples) // BEATS_PER_BAR
    period = int(beat_samples[-1] - beat_samples[-2]) if len(beat_samples) > 1 else L
    edges = np.append(beat_samples, min(L, int(beat_samples[-1]) + period))
    power = np.concatenate([[0.0], np.cumsum(np.mean(y.astype(np.float64) ** 2, axis=0))])
    starts = edges[: n_bars * BEATS_PER_BAR : BEATS_PER_BAR]
    ends = edges[BEATS_PER_BAR : n_bars * BEATS_PER_BAR + 1 : BEATS_PER_BAR]
    mean_power = (power[ends] - power[starts]) / np.maximum(ends - starts, 1)
    return 10.0 * np.log10(np.maximum(mean_power, 1e-12))


def _meta(song: Song, *, style: str, seed: int, index: int, bar_db: np.ndarray) -> dict[str, Any]:
    return {
        "generator": "editorbot.datasets.demo",
        "style": style,
        "seed": seed,
        "index": index,
        "tempo_bpm": song.bpm,
        "key": f"{NOTE_NAMES[song.key % 12]} {song.scale}",
        "scale": song.scale,
        "lead_in_sec": song.lead_in_sec,
        "sections": [asdict(s) for s in song.sections],
        "bar_db": [round(float(v), 2) for v in bar_db],
    }


def write_pair(pair: DemoPair, out_dir: str | Path) -> dict[str, Path]:
    """Write one pair into the seed layout under ``out_dir``, each file atomically.

    Returns:
        Paths by role: ``raw``, ``edit``, ``truth``.
    """
    out_dir = Path(out_dir)
    sr = pair.raw.sr
    paths = {
        "raw": out_dir / "input" / f"{pair.name}_raw.wav",
        "edit": out_dir / "desired_output" / f"{pair.name}_edit.wav",
        "truth": out_dir / "truth" / f"{pair.name}.json",
    }
    write_audio(paths["raw"], pair.raw.y, sr=sr)
    write_audio(paths["edit"], pair.edit, sr=sr, protect=(paths["raw"],))
    pair.decisions.save(paths["truth"])
    return paths


def check_out_dir(out_dir: str | Path) -> Path:
    """The output folder, or a clear error if it cannot be one.

    Raises:
        ParameterError: ``out_dir`` is an existing file.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"{out_dir}: is a file, not a folder; choose another --out")
    return out_dir


def generate(
    out_dir: str | Path,
    *,
    n_tracks: int,
    seed: int = 0,
    style: str | None = None,
    config: DemoConfig | None = None,
) -> list[dict[str, Path]]:
    """Generate and write ``n_tracks`` pairs (styles rotate over tracks unless ``style``).

    Raises:
        ParameterError: ``n_tracks`` < 1, unknown style, ``out_dir`` is a file.
    """
    if n_tracks < 1:
        raise ParameterError(f"--tracks must be at least 1, got {n_tracks}")
    out_dir = check_out_dir(out_dir)
    return [
        write_pair(make_pair(seed, i, style=style, config=config), out_dir) for i in range(n_tracks)
    ]
