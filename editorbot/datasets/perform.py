"""Play a :class:`~editorbot.datasets.song.Song`: schedule every part bar by bar and mix.

Each bar knows its section label, its place in the phrase and its chord; the section's
:class:`~editorbot.datasets.song.Layers` decide which parts play. Drum fills end the last bar of
a phrase that leads into a new section, and a crash marks the first beat of each chorus.

Shape:
    buses are [shape=(L,)] float32; the mix is [shape=(C, L)], C = 2.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from editorbot.datasets import synth
from editorbot.datasets.song import (
    BARS_PER_PHRASE,
    BEATS_PER_BAR,
    SCALES,
    SECTION_LAYERS,
    STEPS_PER_BAR,
    Layers,
    Song,
    SynthResult,
)
from editorbot.datasets.synth import NoteCache

logger = logging.getLogger(__name__)

# part -> (level [linear], pan position [-1, 1], echo mix [linear])
MIX: dict[str, tuple[float, float, float]] = {
    "kick": (0.5, 0.0, 0.0),
    "snare": (0.35, 0.05, 0.0),
    "hats": (0.22, 0.35, 0.0),
    "crash": (0.2, -0.3, 0.0),
    "bass": (0.32, 0.0, 0.0),
    "pad": (0.2, -0.2, 0.3),
    "keys": (0.12, 0.4, 0.2),
    "arp": (0.14, -0.45, 0.35),
    "lead": (0.2, 0.15, 0.3),
}
TAIL_SEC = 1.5  # [s] after the last beat: releases and echoes ring out


@dataclass(frozen=True)
class _Bar:
    label: str
    layers: Layers
    start_beat: int
    bar_in_phrase: int
    chord: int
    fill: bool
    section_start: bool
    repeat: int  # how many earlier sections had this label: later ones add texture


@dataclass
class _Player:
    """What every part needs to turn (bar, step) into samples."""

    song: Song
    sr: int
    buses: dict[str, np.ndarray]
    cache: NoteCache
    kit: dict[str, np.ndarray]

    @property
    def step_samples(self) -> float:
        # [samples/s] * [60 s/min] / [beats/min] / [16ths/beat] = samples per 16th
        return self.sr * 60.0 / self.song.bpm / 4.0

    def onset(self, bar: _Bar, step: float) -> int:
        return round(
            self.song.lead_in_sec * self.sr + (bar.start_beat * 4 + step) * self.step_samples
        )

    def held(self, n_steps: float) -> int:
        return round(n_steps * self.step_samples)

    def midi(self, degree: int, octave: int) -> int:
        scale = SCALES[self.song.scale]
        return self.song.key + 12 * octave + scale[degree % 7] + 12 * (degree // 7)

    def hit(self, part: str, bar: _Bar, step: float, gain: float = 1.0, voice: str = "") -> None:
        synth.place(
            self.buses[part],
            self.onset(bar, step),
            self.kit[voice or part],
            gain * bar.layers.level,
        )

    def note(
        self, part: str, bar: _Bar, step: float, n_steps: float, midi: int, gain: float = 1.0
    ) -> None:
        y = self.cache.note(part, midi, self.held(n_steps), self.song.timbres[part])
        synth.place(self.buses[part], self.onset(bar, step), y, gain * bar.layers.level)


def synthesize(song: Song, *, sr: int, rng: np.random.Generator, peak: float = 0.89) -> SynthResult:
    """Render ``song`` to a stereo mix peaking at ``peak``, with its exact beat grid."""
    beat_samples = song.beat_samples(sr=sr)
    L = round(song.lead_in_sec * sr + song.n_beats * sr * 60.0 / song.bpm + TAIL_SEC * sr)
    kit = {
        "kick": synth.kick(sr=sr, rng=rng),
        "snare": synth.snare(sr=sr, rng=rng),
        "hats": synth.hat(sr=sr, rng=rng),
        "open": synth.hat(sr=sr, rng=rng, open_=True),
        "crash": synth.crash(sr=sr, rng=rng),
    }
    player = _Player(song, sr, {p: np.zeros(L, np.float32) for p in MIX}, NoteCache(sr=sr), kit)
    for bar in _bars(song):
        _drums(player, bar, rng)
        _bass(player, bar)
        _harmony(player, bar)
        _lead(player, bar)
    y = _mix(player.buses, sr=sr, bpm=song.bpm)
    y *= peak / max(float(np.abs(y).max()), 1e-9)
    assert y.shape == (2, L) and np.isfinite(y).all()
    return SynthResult(y=y.astype(np.float32), sr=sr, beat_samples=beat_samples)


def _bars(song: Song) -> Iterator[_Bar]:
    sections = song.sections
    seen: dict[str, int] = {}
    for i, section in enumerate(sections):
        repeat = seen.get(section.label, 0)
        seen[section.label] = repeat + 1
        n_bars = section.n_beats // BEATS_PER_BAR
        next_label = sections[i + 1].label if i + 1 < len(sections) else None
        for b in range(n_bars):
            in_phrase = b % BARS_PER_PHRASE
            yield _Bar(
                label=section.label,
                layers=SECTION_LAYERS[section.label],
                start_beat=section.start_beat + b * BEATS_PER_BAR,
                bar_in_phrase=in_phrase,
                chord=song.progressions[section.label][in_phrase],
                # A fill in the section's last bar when a different section follows.
                fill=b == n_bars - 1 and next_label not in (None, section.label),
                section_start=b == 0,
                repeat=repeat,
            )


def _drums(p: _Player, bar: _Bar, rng: np.random.Generator) -> None:
    mode = bar.layers.drums
    if mode == "none":
        return
    full = mode in ("full", "open")
    fill_from = 8 if bar.fill and full else STEPS_PER_BAR
    if full:
        for s in p.song.kick_steps:
            if s < fill_from:
                p.hit("kick", bar, s)
        for s in (4, 12):
            if s < fill_from:
                p.hit("snare", bar, s)
        for k, s in enumerate(range(fill_from, STEPS_PER_BAR)):  # a rising snare roll
            p.hit("snare", bar, s, gain=0.35 + 0.08 * k)
    hat_step = 1 if full and (p.song.hat16 or (mode == "open" and bar.repeat > 0)) else 2
    for s in range(0, STEPS_PER_BAR, hat_step):
        if s < fill_from:
            # Accents on the beat, a little random velocity so the hats breathe.
            p.hit("hats", bar, s, gain=(1.0 if s % 4 == 0 else 0.6) * rng.uniform(0.8, 1.0))
    if mode == "open":
        for s in (2, 6, 10, 14):
            if s < fill_from:
                p.hit("hats", bar, s, gain=0.5, voice="open")
    if bar.section_start and bar.label == "chorus":
        p.hit("crash", bar, 0)


def _bass(p: _Player, bar: _Bar) -> None:
    mode = bar.layers.bass
    if mode == "long":
        p.note("bass", bar, 0, STEPS_PER_BAR - 1, p.midi(bar.chord, 0))
    elif mode == "groove":
        for step, n, offset in p.song.bass_riff:
            p.note("bass", bar, step, n, p.midi(bar.chord, 0) + offset)
    elif mode == "drive":
        for step in range(0, STEPS_PER_BAR, 2):
            p.note("bass", bar, step, 1.5, p.midi(bar.chord, 0) + (12 if step % 4 == 2 else 0))


def _harmony(p: _Player, bar: _Bar) -> None:
    """Pad chords held through the bar, key stabs, and an arpeggio of the chord.

    Chords are voiced close, inside one octave above ``key + 22``: each change moves every voice
    by a few semitones at most (smooth voice leading), as a keyboard player would.
    """
    low = p.song.key + 22
    triad = sorted(low + (p.midi(bar.chord + d, 0) - low) % 12 for d in (0, 2, 4))
    if bar.layers.pad:
        for m in triad:
            p.note("pad", bar, 0, STEPS_PER_BAR, m, gain=bar.layers.pad)
    if bar.layers.keys:
        seventh = low + (p.midi(bar.chord + 6, 0) - low) % 12
        for step in p.song.key_steps:
            for m in [*triad, seventh]:
                p.note("keys", bar, step, 1, m + 12)
    if bar.layers.arp or (bar.label == "verse" and bar.repeat > 0):
        tones = [*triad, *(m + 12 for m in triad)]
        order = tones + tones[-2:0:-1]  # up, then down
        for k, step in enumerate(range(0, STEPS_PER_BAR, 2)):
            p.note("arp", bar, step, 1.5, order[k % len(order)])


def _lead(p: _Player, bar: _Bar) -> None:
    motif = p.song.motifs.get(bar.label)
    if not bar.layers.lead or motif is None:
        return
    lo, hi = bar.bar_in_phrase * STEPS_PER_BAR, (bar.bar_in_phrase + 1) * STEPS_PER_BAR
    for step, n, degree in motif:
        if lo <= step < hi:
            # The melody stays within about 1.5 octaves above key + 36 (roughly A4-E6).
            d = bar.chord + degree
            p.note("lead", bar, step - lo, n - 0.5, p.midi(d - 7 if d > 9 else d, 3))


def _mix(buses: dict[str, np.ndarray], *, sr: int, bpm: float) -> np.ndarray:
    """Pan every bus, add a tempo-synced echo (a dotted eighth) to the melodic parts, sum."""
    L = next(iter(buses.values())).shape[0]
    y = np.zeros((2, L), np.float32)
    dotted_eighth_sec = 0.75 * 60.0 / bpm
    for part, bus in buses.items():
        level, position, echo = MIX[part]
        gains = synth.pan_gains(position)
        if echo:
            stereo = np.stack([np.float32(level * g) * bus for g in gains])
            y += synth.stereo_echo(stereo, sr=sr, delay_sec=dotted_eighth_sec, mix=echo)
        else:
            for c, g in enumerate(gains):
                y[c] += np.float32(level * g) * bus
    return y
