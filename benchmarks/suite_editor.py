"""An editor independent of editorbot, for the label suite: plain numpy (+ librosa's beat tracker,
time-stretch and pitch-shift), its own beat grid, its own effects, exported as a person would.

Nothing here imports editorbot: the edits it makes are not rendered by the code the labeller was
written against, so a labeller that fits editorbot's renderer and nothing else shows it.

Edit: the raw track's librosa beat grid is walked from the start; at each cursor one operation of
phrase (16 beats), bar (4) or beat (1) scale is drawn — KEEP, CUT, GAIN, LOOP, REPEAT_PREV,
SWAP_NEXT, REORDER, FADE_IN (first segment only), FADE_OUT (last segment only), SPEED_UP/DOWN,
PITCH_UP/DOWN, EQ_LOW/EQ_HIGH — with the meaning editorbot's edit language gives these names. The
truth is the type of the operation that consumed each raw beat.

Export: every seam (where the output leaves the raw track's order or changes effect) is an
equal-power crossfade of 5-80 ms, every cut point lies up to ±10 ms off the beat, the finished edit
is peak-normalised to -1 dBFS, written as MP3 (192 kbit/s-ish VBR; its low-pass and pre-echo) and
decoded again, a third of the edits at 48 kHz instead of the raw's rate, half of them with the
encoder delay a non-gapless decoder leaves (1,105 samples).

Shape:
    y: [shape=(C, L)] float audio; beat_times: [shape=(N,)] seconds.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass, field

import numpy as np

OPS = {
    "KEEP": 0.30, "CUT": 0.10, "GAIN": 0.09, "LOOP": 0.07, "REPEAT_PREV": 0.05,
    "SWAP_NEXT": 0.06, "REORDER": 0.04, "SPEED": 0.07, "PITCH": 0.07, "EQ": 0.08,
    "FADE_IN": 0.035, "FADE_OUT": 0.035,
}  # fmt: skip
"""[weight] how often each operation is drawn (FADE_* only where allowed)."""
SCALES = ((16, 0.45), (4, 0.4), (1, 0.15))
"""[beats, weight] phrase, bar, beat."""


@dataclass
class _Piece:
    y: np.ndarray
    """[shape=(C, L)] audio of the piece."""
    start: int
    """[samples] raw start (for seam detection), -1 for transformed audio."""
    end: int
    """[samples] raw end."""


@dataclass
class Edit:
    """One edit and its truth."""

    y: np.ndarray
    """[shape=(C, L)] the finished edit at ``sr``."""
    sr: int
    """[Hz] the edit's rate."""
    beat_times: np.ndarray
    """[shape=(N,)] [s] the raw track's beats (the editor's own grid)."""
    types: list[str] = field(default_factory=list)
    """[N] the operation that consumed each raw beat."""


def beat_grid(y: np.ndarray, sr: int) -> np.ndarray:
    """[shape=(N,)] [s] librosa's beats of the raw track (its mono mix at 22,050 Hz)."""
    import librosa

    mono = librosa.resample(y.mean(axis=0), orig_sr=sr, target_sr=22050)
    _, beats = librosa.beat.beat_track(y=mono, sr=22050, units="time")
    return np.asarray(beats, dtype=float)


def make_edit(y: np.ndarray, sr: int, beat_times: np.ndarray, rng: np.random.Generator) -> Edit:
    """Draw and render one edit of ``y`` on ``beat_times`` (not exported yet)."""
    edges = np.append(np.round(beat_times * sr).astype(int), y.shape[1])
    edges[0] = 0
    N = len(beat_times)
    types = ["KEEP"] * N
    pieces: list[_Piece] = []
    deferred: list[_Piece] = []
    c = 0
    while c < N:
        n = _draw_scale(rng, N - c)
        op = _draw_op(rng, first=c == 0, last=c + n >= N, n=n, left=N - c, out=pieces)
        cut = _jitter(edges, c, c + n, sr, rng)
        seg = y[:, cut[0] : cut[1]]
        if op == "SWAP_NEXT":
            nxt = _jitter(edges, c + n, c + 2 * n, sr, rng)
            pieces += [_Piece(y[:, nxt[0] : nxt[1]], *nxt), _Piece(seg, *cut)]
            types[c : c + 2 * n] = [op] * (2 * n)
            c += 2 * n
            continue
        name, out = _render_op(op, seg, sr, rng, pieces)
        types[c : c + n] = [name] * n
        if op == "REORDER":
            deferred.append(_Piece(seg, *cut))
        elif out is not None:
            pieces.append(_Piece(out, *(cut if name in ("KEEP", "LOOP") else (-1, -1))))
        c += n
    return Edit(_join(pieces + deferred, sr, rng), sr, beat_times, types)


def _draw_scale(rng: np.random.Generator, left: int) -> int:
    sizes = [s for s, _ in SCALES if s <= left] or [1]
    w = np.array([dict(SCALES)[s] for s in sizes])
    return int(rng.choice(sizes, p=w / w.sum()))


def _draw_op(
    rng: np.random.Generator, *, first: bool, last: bool, n: int, left: int, out: list[_Piece]
) -> str:
    ok = dict(OPS)
    if not first:
        ok.pop("FADE_IN")
    if not last:
        ok.pop("FADE_OUT")
    if 2 * n > left:
        ok.pop("SWAP_NEXT")
    if sum(p.y.shape[1] for p in out) == 0 or n == 1:
        ok.pop("REPEAT_PREV")
    if n == 1:  # a beat is too short for a stretch or a shift anyone would hear as one
        ok.pop("SPEED"), ok.pop("PITCH")
    names = list(ok)
    w = np.array([ok[k] for k in names])
    return str(rng.choice(names, p=w / w.sum()))


def _jitter(edges: np.ndarray, b0: int, b1: int, sr: int, rng: np.random.Generator) -> tuple:
    """Raw [start, end) samples of beats [b0, b1) with each cut point up to ±10 ms off."""
    j = rng.integers(-int(0.010 * sr), int(0.010 * sr) + 1, size=2)
    s = int(np.clip(edges[b0] + (j[0] if b0 > 0 else 0), 0, edges[-1]))
    e = int(np.clip(edges[b1] + (j[1] if b1 < len(edges) - 1 else 0), s + 1, edges[-1]))
    return s, e


def _render_op(
    op: str, seg: np.ndarray, sr: int, rng: np.random.Generator, out: list[_Piece]
) -> tuple[str, np.ndarray | None]:
    """(truth type name, audio played now or None)."""
    import librosa

    if op in ("KEEP", "REORDER"):
        return op, seg
    if op == "CUT":
        return op, None
    if op == "GAIN":
        return op, seg * 10 ** (float(rng.choice([-6, -3, 3, 6])) / 20)
    if op == "LOOP":
        return op, np.concatenate([seg] * int(rng.choice([2, 2, 3])), axis=1)
    if op == "REPEAT_PREV":
        played = np.concatenate([p.y for p in out], axis=1)
        return op, played[:, -min(seg.shape[1], played.shape[1]) :]
    if op in ("FADE_IN", "FADE_OUT"):
        ramp = np.sin(0.5 * np.pi * np.linspace(0, 1, seg.shape[1]))
        return op, seg * (ramp if op == "FADE_IN" else ramp[::-1])
    if op == "SPEED":
        rate = float(rng.choice([1.12, 1.25, 0.88, 0.8]))
        y = np.stack([librosa.effects.time_stretch(ch, rate=rate) for ch in seg])
        return ("SPEED_UP" if rate > 1 else "SPEED_DOWN"), y
    if op == "PITCH":
        steps = float(rng.choice([-5, -2, 2, 5]))
        y = np.stack([librosa.effects.pitch_shift(ch, sr=sr, n_steps=steps) for ch in seg])
        return ("PITCH_UP" if steps > 0 else "PITCH_DOWN"), y
    low = bool(rng.integers(2))
    return ("EQ_LOW" if low else "EQ_HIGH"), _shelf(seg, sr, low=low, db=float(rng.choice([-6, 6])))


def _shelf(y: np.ndarray, sr: int, *, low: bool, db: float) -> np.ndarray:
    """A smooth shelf applied in the frequency domain (not editorbot's biquad)."""
    f = np.fft.rfftfreq(y.shape[1], 1 / sr)
    corner = 250.0 if low else 3000.0
    s = 1 / (1 + (np.maximum(f, 1.0) / corner) ** (2 if low else -2))  # 1 on the shelf side
    g = 10 ** (db * s / 20)
    return np.fft.irfft(np.fft.rfft(y, axis=1) * g, n=y.shape[1], axis=1)


def _join(pieces: list[_Piece], sr: int, rng: np.random.Generator) -> np.ndarray:
    """Concatenate, with an equal-power crossfade of 5-80 ms at every seam."""
    out = pieces[0].y
    for prev, p in itertools.pairwise(pieces):
        contiguous = prev.start >= 0 and p.start >= 0 and abs(p.start - prev.end) <= 1
        if contiguous:
            out = np.concatenate([out, p.y], axis=1)
            continue
        n = min(int(rng.uniform(0.005, 0.080) * sr), out.shape[1] // 2, p.y.shape[1] // 2)
        t = np.linspace(0, 0.5 * np.pi, n)
        mix = out[:, out.shape[1] - n :] * np.cos(t) + p.y[:, :n] * np.sin(t)
        out = np.concatenate([out[:, : out.shape[1] - n], mix, p.y[:, n:]], axis=1)
    return out


def export(edit: Edit, rng: np.random.Generator) -> Edit:
    """The edit as a person exports it: peak -1 dBFS, maybe 48 kHz, MP3 round trip, maybe delay."""
    import soundfile as sf
    from scipy.signal import resample_poly

    y = edit.y * (10 ** (-1 / 20) / max(float(np.abs(edit.y).max()), 1e-9))
    sr = edit.sr
    if sr == 44100 and rng.random() < 1 / 3:
        y, sr = resample_poly(y, 160, 147, axis=1), 48000
    buf = io.BytesIO()
    sf.write(buf, y.T, sr, format="MP3", compression_level=0.3)
    buf.seek(0)
    z, _ = sf.read(buf, always_2d=True)
    z = z.T
    if rng.random() < 0.5:  # a decoder that does not read the gapless header keeps the delay
        z = np.pad(z, ((0, 0), (1105 * sr // 44100, 0)))
    return Edit(z.astype(np.float32), sr, edit.beat_times, edit.types)
