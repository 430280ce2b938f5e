"""Expert replay → offline behavioural-cloning data in RLlib's offline format.

For every labelled track: compute its beat features on the decision list's beat grid, fit the
normaliser on all of them, build the :class:`~editorbot.envs.track_table.TrackTable`, and replay
the expert decision list through :class:`~editorbot.envs.editing_env.EditingEnv`, so BC
observations (edit history included) are exactly the ones a rollout sees.

Output folder::

    OUT/tables/NAME.npz, OUT/tables/normalizer.json   the environment's inputs
    OUT/episodes/NAME.parquet                         one row per timestep (RLlib offline format)
    OUT/bc_data.json                                  manifest: env config, tracks, step counts

Rows follow RLlib's per-timestep schema (``eps_id, obs, actions, rewards, new_obs, terminateds,
truncateds, t``) with the Dict observations packed by ``ray.rllib.utils.compression.pack``; read
them with ``config.offline_data(input_=[OUT/episodes], input_compress_columns=["obs",
"new_obs"])`` (see :func:`editorbot.training.ppo.bc_config`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from editorbot.atomic import atomic_path, write_text_atomic
from editorbot.editing import actions as sm
from editorbot.editing.actions import ActionAmount, ActionSize, ActionType
from editorbot.editing.decisions import DecisionList
from editorbot.envs.editing_env import EditingEnv
from editorbot.envs.track_table import (
    FeatureNormalizer,
    TrackTable,
    save_tables,
    table_from_analysis,
)
from editorbot.errors import DatasetError

if TYPE_CHECKING:
    from editorbot.audio.analysis import TrackFeatures

logger = logging.getLogger(__name__)

TABLES_DIR = "tables"
EPISODES_DIR = "episodes"
MANIFEST = "bc_data.json"
_KEEP_BEAT = (int(ActionType.KEEP), int(ActionSize.BEAT), int(ActionAmount.NEUTRAL))


@dataclass(frozen=True, eq=False)
class RawTrack:
    """A labelled track before normalisation."""

    name: str
    analysis: TrackFeatures
    """The decision list's grid and the raw beat features on it."""
    target_ratio: float | None
    """[ratio] edit duration / (n_beats × beat_sec) when the edit audio exists, else None (then
    the replayed output's)."""
    actions: np.ndarray
    """[shape=(k, 3)] expert (type, size, amount) list covering the track."""

    @property
    def features(self) -> np.ndarray:
        """[shape=(n, 121)] raw beat features on the decision list's grid."""
        return self.analysis.features


def expert_actions(dl: DecisionList, n_beats: int, *, name: str = "<labels>") -> np.ndarray:
    """The decision list as env actions: undecided gaps become KEEP BEAT steps (what the
    decision list's own plan does to them), so the replay covers every beat.

    Returns:
        [shape=(k, 3)] int64.

    Raises:
        DatasetError: the list does not fit a grid of ``n_beats`` beats.
    """
    dl.validate(n_beats, name=name)
    state = sm.initial_state(n_beats, downbeat_phase=dl.downbeat_phase)
    out: list[tuple[int, int, int]] = []
    for d in dl.decisions:
        out.extend([_KEEP_BEAT] * (d.beat - state.cursor))
        state, _ = sm.keep_until(state, d.beat)
        state, _ = sm.step(state, d.type, d.size, d.amount)
        out.append((int(d.type), int(d.size), int(d.amount)))
    out.extend([_KEEP_BEAT] * (n_beats - state.cursor))
    return np.asarray(out, np.int64).reshape(-1, 3)


def load_raw_track(label_path: Path, data_dir: Path) -> RawTrack:
    """Features and expert actions of one labelled track (``LABELS/NAME.json`` ↔
    ``DATA/input/NAME_raw.*``, ``DATA/desired_output/NAME_edit.*``)."""
    from editorbot.audio.analysis import analyze_on_grid
    from editorbot.audio.beats import BeatGrid
    from editorbot.audio.io import load_audio

    name = label_path.stem
    dl = DecisionList.load(label_path)
    raw_path = _find_audio(data_dir / "input", f"{name}_raw", label_path)
    assert raw_path is not None  # _find_audio raises when a label is given
    audio = load_audio(raw_path)
    if dl.beat_times is None:
        raise DatasetError(f"{label_path}: no beat_times; re-export the labels with their grid")
    grid = BeatGrid.from_beat_times(
        dl.beat_times, downbeat_phase=dl.downbeat_phase, duration_sec=audio.duration_sec
    )
    edit = _find_audio(data_dir / "desired_output", f"{name}_edit", None)
    ratio = None
    if edit is not None:
        import soundfile as sf

        # In beats of the grid, as the reward counts the output: a raw track's tail after its
        # last full beat must not count as material the edit dropped.
        ratio = float(sf.info(str(edit)).duration * grid.tempo_bpm / 60.0 / grid.n_beats)
    return RawTrack(
        name=name,
        analysis=analyze_on_grid(audio, grid),
        target_ratio=ratio,
        actions=expert_actions(dl, grid.n_beats, name=str(label_path)),
    )


def build_tables(
    raws: list[RawTrack], normalizer: FeatureNormalizer | None = None
) -> tuple[list[TrackTable], FeatureNormalizer]:
    """Fit the normaliser on ``raws`` (unless given) and build their tables."""
    normalizer = normalizer or FeatureNormalizer.fit([r.features for r in raws])
    tables = [
        table_from_analysis(
            r.name,
            r.analysis,
            normalizer,
            expert_actions=r.actions,
            target_ratio=r.target_ratio,
        )
        for r in raws
    ]
    return tables, normalizer


def replay_rows(env: EditingEnv, index: int) -> list[dict[str, Any]]:
    """Replay track ``index``'s expert list through ``env``: one offline row per step."""
    from ray.rllib.utils.compression import pack

    table = env.tables[index]
    obs, _ = env.reset(seed=0, options={"track_index": index})
    rows = []
    for t, action in enumerate(table.expert_actions):
        new_obs, reward, terminated, truncated, info = env.step(action)
        if info["action_repaired"]:
            raise DatasetError(f"{table.name}: expert action {t} is masked in the env; rebuild")
        rows.append(
            {
                "eps_id": table.name,
                "obs": pack(obs),
                "actions": [int(x) for x in action],
                "rewards": float(reward),
                "new_obs": pack(new_obs),
                "terminateds": bool(terminated),
                "truncateds": bool(truncated),
                "t": t,
            }
        )
        obs = new_obs
        if terminated or truncated:
            break
    return rows


def bc_data_from_labels(
    labels_dir: Path, data_dir: Path, out: Path, *, env_config: dict
) -> dict[str, Any]:
    """Features, normaliser and expert episodes for every decision list in ``labels_dir`` (one
    per pair of ``data_dir``) into ``out``: what ``bc-data``, ``train rl`` and ``tune`` share.

    Raises:
        DatasetError: ``labels_dir`` holds no decision lists.
    """
    labels = sorted(Path(labels_dir).glob("*.json"))
    if not labels:
        raise DatasetError(
            f"{labels_dir}: no decision lists; run `editorbot labels --data-dir {data_dir} "
            "--out LABELS` first"
        )
    tables, normalizer = build_tables([load_raw_track(p, data_dir) for p in labels])
    return write_bc_data(out, tables, normalizer, env_config=env_config)


def write_bc_data(
    out: str | Path, tables: list[TrackTable], normalizer: FeatureNormalizer, *, env_config: dict
) -> dict[str, Any]:
    """Write tables, per-track Parquet episodes and the manifest into ``out``; returns it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    save_tables(out / TABLES_DIR, tables, normalizer)
    env = EditingEnv({"tables": tables, **env_config})
    counts = {}
    for i, table in enumerate(tables):
        rows = replay_rows(env, i)
        with atomic_path(out / EPISODES_DIR / f"{table.name}.parquet") as tmp:
            pq.write_table(pa.Table.from_pylist(rows), tmp)
        counts[table.name] = len(rows)
    manifest = {"env_config": env_config, "steps": counts, "n_tracks": len(tables)}
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=1))
    return manifest


def _find_audio(folder: Path, stem: str, label: Path | None) -> Path | None:
    from editorbot.audio.io import AUDIO_EXTENSIONS

    for ext in AUDIO_EXTENSIONS:
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    if label is not None:
        raise DatasetError(
            f"{label}: no audio {folder / stem}.wav for this label; check --data-dir"
        )
    return None


def load_expert_arrays(episodes: str | Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """All expert (observation, action) pairs of an episodes folder, stacked.

    Returns:
        obs: key -> [shape=(N, ...)] float32 arrays; actions: [shape=(N, 3)] int64.

    Raises:
        DatasetError: no Parquet files in the folder.
    """
    import pyarrow.parquet as pq
    from ray.rllib.utils.compression import unpack

    paths = sorted(Path(episodes).glob("*.parquet"))
    if not paths:
        raise DatasetError(f"{episodes}: no expert episodes (*.parquet); run `editorbot bc-data`")
    obs: list[dict[str, np.ndarray]] = []
    actions: list[list[int]] = []
    for path in paths:
        table = pq.read_table(path, columns=["obs", "actions"]).to_pydict()
        obs.extend(unpack(o) for o in table["obs"])
        actions.extend(table["actions"])
    stacked = {k: np.stack([o[k] for o in obs]).astype(np.float32) for k in obs[0]}
    return stacked, np.asarray(actions, np.int64)
