"""Procedural songs for the demo data: a composition (:class:`Song`) and its stereo render.

:func:`compose` draws a tempo, key, scale, chord progressions, timbres, drum and bass patterns and
lead motifs, and arranges 4-bar phrases into sections (intro, verse, chorus, bridge, outro).
:func:`synthesize` plays it: every section has its own instrumentation (sparse intro and outro,
full chorus with lead and open hats, a drumless breakdown bridge), drum fills lead into new
sections, and a crash marks each chorus. Because the notes are placed on a known grid, the beat
positions are exact and go into the truth file.

Everything random comes from one ``numpy.random.Generator``: a seed gives the same song, sample
for sample.

Shape:
    ``SynthResult.y`` is [shape=(C, L)], C = 2; ``beat_samples`` is [shape=(n_beats,)] int64.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from editorbot.datasets.synth import Timbre
from editorbot.errors import ParameterError

logger = logging.getLogger(__name__)

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
}
# Chord roots as scale degrees, one per bar of a phrase (I-vi-IV-V, I-V-vi-IV, ...).
PROGRESSIONS: tuple[tuple[int, ...], ...] = (
    (0, 5, 3, 4),
    (0, 4, 5, 3),
    (5, 3, 0, 4),
    (0, 3, 4, 3),
    (0, 5, 2, 6),
    (0, 3, 5, 4),
    (3, 4, 0, 0),
)
LABELS = ("intro", "verse", "chorus", "bridge", "outro")
BEATS_PER_BAR = 4
BARS_PER_PHRASE = 4
BEATS_PER_PHRASE = BEATS_PER_BAR * BARS_PER_PHRASE
STEPS_PER_BAR = 16  # sixteenth notes


@dataclass(frozen=True)
class Layers:
    """Which parts play in a section: what makes sections differ in energy and texture."""

    drums: str
    """'none', 'hats' (hats only), 'half' (half-time), 'full' or 'open' (full + open hats)."""
    bass: str
    """'none', 'long' (whole notes), 'groove' (the song's riff) or 'drive' (octave eighths)."""
    pad: float
    """[linear] pad level (0: silent)."""
    keys: bool
    """chord stabs on."""
    arp: bool
    """arpeggio on."""
    lead: bool
    """lead melody on."""
    level: float
    """[linear] section level applied to every part (the chorus is the loudest)."""


SECTION_LAYERS: dict[str, Layers] = {
    "intro": Layers(
        drums="hats", bass="none", pad=0.6, keys=False, arp=True, lead=False, level=0.8
    ),
    "verse": Layers(
        drums="full", bass="groove", pad=0.35, keys=True, arp=False, lead=False, level=0.75
    ),
    "chorus": Layers(
        drums="open", bass="drive", pad=0.8, keys=True, arp=True, lead=True, level=1.0
    ),
    "bridge": Layers(
        drums="none", bass="long", pad=0.9, keys=False, arp=True, lead=True, level=0.65
    ),
    "outro": Layers(
        drums="hats", bass="long", pad=0.5, keys=False, arp=False, lead=False, level=0.7
    ),
}


@dataclass(frozen=True)
class SongConfig:
    """Ranges a song is drawn from."""

    sr: int = 44100
    """[Hz] sample rate of the render."""
    min_seconds: float = 60.0
    """[s] shortest track drawn (the form never has fewer than 3 phrases)."""
    max_seconds: float = 240.0
    """[s] longest track drawn."""
    min_bpm: float = 80.0
    """[beats/min] slowest tempo drawn."""
    max_bpm: float = 160.0
    """[beats/min] fastest tempo drawn."""
    bpm: float | None = None
    """[beats/min] fixed tempo instead of a drawn one (None: draw)."""
    peak: float = 0.89
    """[linear] peak of the final mix (-1 dBFS)."""

    def __post_init__(self) -> None:
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ParameterError(
                f"need 0 < min_seconds <= max_seconds, got {self.min_seconds}, {self.max_seconds}"
            )
        if not 0 < self.min_bpm <= self.max_bpm:
            raise ParameterError(f"need 0 < min_bpm <= max_bpm, got {self.min_bpm}, {self.max_bpm}")
        if self.bpm is not None and not 40 <= self.bpm <= 240:
            raise ParameterError(f"bpm must be in [40, 240], got {self.bpm}")


@dataclass(frozen=True)
class Section:
    """A labelled run of phrases on the beat grid."""

    label: str
    """one of ``LABELS``."""
    start_beat: int
    """[beats] first beat."""
    n_beats: int
    """[beats] length (a whole number of phrases)."""


@dataclass(frozen=True)
class Song:
    """A complete composition: everything :func:`synthesize` needs besides drum noise."""

    bpm: float
    """[beats/min] tempo."""
    key: int
    """[MIDI] root of the key in the bass octave."""
    scale: str
    """name in ``SCALES``."""
    sections: tuple[Section, ...]
    """the form, in order, covering every beat."""
    progressions: dict[str, tuple[int, ...]]
    """per section label, the chord root (scale degree) of each bar of a phrase."""
    timbres: dict[str, Timbre]
    """per part ('bass', 'pad', 'keys', 'arp', 'lead')."""
    kick_steps: tuple[int, ...]
    """[16ths] kick pattern of a full bar."""
    bass_riff: tuple[tuple[int, int, int], ...]
    """(step, length in 16ths, octave offset in semitones) of the verse bass riff."""
    key_steps: tuple[int, ...]
    """[16ths] chord-stab rhythm."""
    hat16: bool
    """sixteenth-note hats in full sections (else eighths)."""
    motifs: dict[str, tuple[tuple[int, int, int], ...]]
    """per label, lead notes over a phrase: (step, length in 16ths, degree above the chord)."""
    lead_in_sec: float = 0.0
    """[s] silence before beat 0."""
    n_beats: int = field(init=False)
    """[beats] total beats of the form."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_beats", sum(s.n_beats for s in self.sections))

    def beat_samples(self, *, sr: int) -> np.ndarray:
        """[shape=(n_beats,)] int64 sample index of every beat."""
        spb = sr * 60.0 / self.bpm  # [samples/s] * [60 s/min] / [beats/min] = samples per beat
        return np.round(self.lead_in_sec * sr + np.arange(self.n_beats) * spb).astype(np.int64)


@dataclass(frozen=True, eq=False)
class SynthResult:
    """A rendered song and its exact beat grid."""

    y: np.ndarray
    """[shape=(C, L)] float32 stereo mix."""
    sr: int
    """[Hz] sample rate."""
    beat_samples: np.ndarray
    """[shape=(n_beats,)] int64 sample index of every beat."""


def compose(rng: np.random.Generator, *, config: SongConfig | None = None) -> Song:
    """Draw a song: tempo, key, scale, form, progressions, timbres, patterns and motifs."""
    config = config or SongConfig()
    bpm = (
        config.bpm if config.bpm is not None else float(rng.uniform(config.min_bpm, config.max_bpm))
    )
    bpm = round(bpm, 2)
    seconds = rng.uniform(config.min_seconds, config.max_seconds)
    phrase_sec = BEATS_PER_PHRASE * 60.0 / bpm
    n_phrases = max(3, round(seconds / phrase_sec))
    scale = str(rng.choice(list(SCALES)))
    return Song(
        bpm=bpm,
        key=int(rng.integers(33, 45)),
        scale=scale,
        sections=_form(n_phrases, rng),
        progressions={label: _progression(rng) for label in LABELS},
        timbres=_timbres(rng),
        kick_steps=[(0, 4, 8, 12), (0, 8, 10), (0, 6, 10), (0, 7, 8, 14), (0, 10)][
            int(rng.integers(5))
        ],
        bass_riff=_bass_riff(rng),
        key_steps=[(2, 6, 10, 14), (0, 3, 6, 10, 12), (0, 4, 8, 12), (0, 6, 12)][
            int(rng.integers(4))
        ],
        hat16=bool(rng.random() < 0.4),
        motifs={
            "verse": _motif(rng, density=0.5, max_len=4),
            "chorus": _motif(rng, density=0.75, max_len=4),
            "bridge": _motif(rng, density=0.3, max_len=8),
        },
        lead_in_sec=round(float(rng.uniform(0.0, 0.25)), 3),
    )


def _form(n_phrases: int, rng: np.random.Generator) -> tuple[Section, ...]:
    """Intro, alternating verses and choruses, a bridge before the last chorus, outro."""
    n_intro = 2 if n_phrases >= 12 else 1
    n_outro = 2 if n_phrases >= 14 else 1
    middle = n_phrases - n_intro - n_outro
    if middle <= 3:  # short tracks: one phrase each of what fits
        body = (
            [("verse", 1), ("chorus", 1), ("bridge", 1)][:middle] if middle > 1 else [("chorus", 1)]
        )
    else:
        n_final = 2 if middle >= 6 else 1
        n_bridge = int(rng.integers(1, 3)) if middle >= 7 else 1
        n_fill = middle - n_final - n_bridge
        size = 2 if n_fill >= 4 else 1  # verses and choruses of 2 phrases when there is room
        body = [(("verse", "chorus")[k % 2], size) for k in range(n_fill // size)]
        if n_fill % size:
            body.append((("verse", "chorus")[(n_fill // size) % 2], 1))
        body += [("bridge", n_bridge), ("chorus", n_final)]
    blocks = [("intro", n_intro), *body, ("outro", n_outro)]
    sections: list[Section] = []
    start = 0
    for label, n in blocks:
        if sections and sections[-1].label == label:  # merge repeats of one label
            last = sections.pop()
            start, n = last.start_beat, n + last.n_beats // BEATS_PER_PHRASE
        sections.append(Section(label=label, start_beat=start, n_beats=n * BEATS_PER_PHRASE))
        start += n * BEATS_PER_PHRASE
    return tuple(sections)


def _progression(rng: np.random.Generator) -> tuple[int, ...]:
    return PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]


def _timbres(rng: np.random.Generator) -> dict[str, Timbre]:
    """Per-song sound design: waveforms, filters and envelopes drawn from musical ranges."""
    u = rng.uniform
    fm_bass = rng.random() < 0.3
    return {
        "bass": Timbre(
            wave=str(rng.choice(["saw", "square"])),
            cutoff_hz=u(250, 900),
            attack_sec=0.003,
            decay_sec=0.15,
            sustain=0.6,
            release_sec=0.04,
            fm_ratio=1.0 if fm_bass else 0.0,
            fm_index=u(1.0, 3.0) if fm_bass else 0.0,
        ),
        "pad": Timbre(
            wave=str(rng.choice(["saw", "triangle", "square"])),
            cutoff_hz=u(700, 2500),
            attack_sec=u(0.15, 0.5),
            decay_sec=0.5,
            sustain=0.8,
            release_sec=u(0.3, 0.7),
            detune_cents=u(6, 15),
        ),
        "keys": Timbre(
            wave="sine",
            attack_sec=0.002,
            decay_sec=u(0.2, 0.5),
            sustain=0.15,
            release_sec=0.1,
            fm_ratio=float(rng.choice([1.0, 2.0])),
            fm_index=u(1.0, 3.0),
        ),
        "arp": Timbre(
            wave=str(rng.choice(["triangle", "saw"])),
            cutoff_hz=u(1500, 4000),
            attack_sec=0.002,
            decay_sec=u(0.08, 0.2),
            sustain=0.05,
            release_sec=0.05,
            fm_ratio=3.5 if rng.random() < 0.4 else 0.0,
            fm_index=u(1.0, 2.5),
        ),
        "lead": Timbre(
            wave=str(rng.choice(["square", "saw"])),
            cutoff_hz=u(2000, 5000),
            attack_sec=u(0.005, 0.03),
            decay_sec=0.3,
            sustain=0.6,
            release_sec=0.12,
            vibrato_cents=u(10, 30),
            detune_cents=u(0, 8),
        ),
    }


def _bass_riff(rng: np.random.Generator) -> tuple[tuple[int, int, int], ...]:
    riffs = (
        ((0, 3, 0), (3, 3, 0), (6, 2, 0), (8, 4, 0), (12, 2, 12), (14, 2, 0)),
        ((0, 2, 0), (4, 2, 0), (6, 2, 12), (8, 2, 0), (12, 2, 0), (14, 2, 7)),
        ((0, 6, 0), (6, 2, 0), (8, 6, 0), (14, 2, -5)),
        ((0, 2, 0), (2, 2, 12), (4, 2, 0), (6, 2, 12), (8, 2, 0), (10, 2, 12), (12, 4, 0)),
    )
    return riffs[int(rng.integers(len(riffs)))]


def _motif(
    rng: np.random.Generator, *, density: float, max_len: int
) -> tuple[tuple[int, int, int], ...]:
    """A 2-bar call, repeated with a new ending as the answer: a 4-bar lead phrase."""
    onsets = [s for s in range(0, 2 * STEPS_PER_BAR, 2) if s == 0 or rng.random() < density]
    notes, degree = [], int(rng.choice([0, 2, 4]))
    for i, step in enumerate(onsets):
        nxt = onsets[i + 1] if i + 1 < len(onsets) else 2 * STEPS_PER_BAR
        if step % STEPS_PER_BAR == 0:  # bar starts land on a chord tone
            degree = int(rng.choice([0, 2, 4, 7]))
        else:
            degree = int(np.clip(degree + rng.choice([-2, -1, 1, 2]), -2, 9))
        notes.append((step, min(nxt - step, max_len), degree))
    call = tuple(notes)
    answer = [(s + 2 * STEPS_PER_BAR, n, d) for s, n, d in call]
    for j in range(max(0, len(answer) - 3), len(answer)):  # the answer ends differently
        s, n, d = answer[j]
        answer[j] = (s, n, int(rng.choice([0, 2, 4])) if j == len(answer) - 1 else d + 1)
    return call + tuple(answer)
