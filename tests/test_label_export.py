"""The export-chain estimate (codec delay, global gain, EQ curve) and scoring labels by time."""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt

from editorbot.audio.io import Audio
from editorbot.editing.labels import ExportConfig, prepare_pair
from editorbot.editing.labels.mastering import estimate_chain
from editorbot.evaluation.label_metrics import BeatLabels, on_grid

SR = 44100


def _music(seconds: float = 12.0, seed: int = 0) -> np.ndarray:
    """Changing chords over noise bursts: each frame differs from the next (matchable)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = np.zeros_like(t)
    for k in range(int(seconds * 2)):
        sl = slice(int(k * SR / 2), int((k + 1) * SR / 2))
        for f in rng.uniform(100, 4000, size=3):
            y[sl] += 0.1 * np.sin(2 * np.pi * f * t[sl])
        y[sl] += 0.05 * rng.standard_normal(len(t[sl])) * np.exp(-8 * (t[sl] - t[sl][0]))
    return y.astype(np.float32)


def test_chain_recovers_gain_lowpass_and_delay() -> None:
    raw = _music()
    sos = butter(8, 12000, btype="low", fs=SR, output="sos")
    edit = np.pad(10 ** (7 / 20) * sosfiltfilt(sos, raw), (1105, 0))
    chain = estimate_chain(raw, edit, sr=SR, config=ExportConfig())
    assert chain.delay_samples == 1105  # LAME's delay, found to the sample on a clean opening
    # 0.5 dB: the median over bands below 8 kHz of an exact 7 dB gain, plus STFT leakage
    assert abs(chain.gain_db - 7.0) < 0.5
    high = np.array(chain.curve_db)[np.array(chain.band_hz) > 15000]
    assert high.size and high.max() < -15  # the low-pass shows as a cut, not as the gain
    assert chain.applied


def test_untouched_edit_leaves_the_raw_as_is() -> None:
    y = _music(seed=1)[None, :]
    raw, edit = Audio(y, SR), Audio(y.copy(), SR)
    raw2, edit2, chain = prepare_pair(raw, edit, ExportConfig())
    assert not chain.applied and chain.delay_samples == 0
    np.testing.assert_array_equal(raw2.y, y)  # demo pairs keep sample-exact copies
    np.testing.assert_array_equal(edit2.y, y)


def test_on_grid_reads_labels_by_time() -> None:
    pred = BeatLabels(
        np.arange(8) * 0.25,  # twice the truth's tempo
        np.array([[0, 0, 2]] * 4 + [[1, 0, 2]] * 4),
        np.array([[5, 4, 0, 2]]),
    )
    read = on_grid(pred, np.arange(4) * 0.5)
    assert read.labels[:, 0].tolist() == [0, 0, 1, 1]  # midpoints 0.25, 0.75 | 1.25, 1.75
    assert read.events[:, 0].tolist() == [2]  # the event at 1.25 s lies in truth beat 2


def test_keep_margin_reads_codec_noise_as_unchanged_but_keeps_a_real_gain() -> None:
    from editorbot.editing.actions import ActionType as T
    from editorbot.editing.align_effects import EffectConfig, best_effect

    sr = 22050
    rng = np.random.default_rng(2)
    t = np.arange(3 * sr) / sr
    # a tone-rich raw whose high band a -3 dB shelf could 'explain' noise in
    y_raw = (0.2 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.normal(size=t.size))[None]
    noise = 0.2 * 10 ** (-28 / 20) * rng.normal(size=t.size)  # -28 dB: a codec's residual
    y_raw = y_raw.astype(np.float32)
    s, e = sr, 2 * sr
    config = EffectConfig(changed_db=-20.0, keep_margin_db=3.0)
    kw = dict(sr=sr, raw_start=s, raw_end=e, edit_start=s, types=(T.GAIN, T.EQ_LOW, T.EQ_HIGH))
    quiet = best_effect(y_raw, y_raw + noise, config=config, **kw)
    assert quiet.type == T.KEEP  # an effect winning by under 3 dB on codec noise is noise
    louder = best_effect(y_raw, 10 ** (6 / 20) * y_raw + noise, config=config, **kw)
    assert louder.type == T.GAIN  # +6 dB leaves KEEP about 10 dB worse: far above the margin
