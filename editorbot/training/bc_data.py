"""Expert replay → offline behavioural-cloning data in RLlib's offline format.

For every labelled track: compute its beat features on the decision list's beat grid, fit the
normaliser on all of them, build the :class:`~editorbot.envs.track_table.TrackTable`, and replay
the expert decision list through :class:`~editorbot.envs.editing_env.EditingEnv`, so BC
observations (edit history included) are exactly the ones a rollout sees.

Output folder::

    OUT/tables/NAME.npz, OUT/tables/normalizer.json   the environment's inputs
    OUT/episodes/NAME.parquet                         one row per timestep, plain arrays
    OUT/bc_data.json                                  manifest: env config, tracks, step counts

Episode rows hold ``eps_id, t, actions, rewards, terminateds, truncateds``, ``weights`` (the
step's label confidence, which scales its BC loss; a file without the column reads as 1) and
one flat float32 list column ``obs.KEY`` per observation key; the shapes are in the file's
schema metadata (:data:`FORMAT_KEY`). Nothing in a BC dataset is pickled, so a shared one is
data, not code.
(RLlib's own offline format packs observations with ``ray.rllib.utils.compression.pack``, and
reading it back is ``cloudpickle.loads``: a dataset in that format, from an older editorbot, is
refused.)
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
FORMAT_KEY = b"editorbot_bc"
"""Parquet schema metadata key: ``{"format": 2, "obs_shapes": {key: shape}}`` (JSON)."""
EPISODE_FORMAT = 2
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
    confidence: np.ndarray
    """[shape=(k,)] each action's label confidence in [0, 1] (1 for a filled-in KEEP)."""

    @property
    def features(self) -> np.ndarray:
        """[shape=(n, 121)] raw beat features on the decision list's grid."""
        return self.analysis.features


@dataclass(frozen=True, eq=False)
class ExpertSteps:
    """Stacked expert steps of BC: what the learners fit."""

    obs: dict[str, np.ndarray]
    """key -> [shape=(N, ...)] float32 observations."""
    actions: np.ndarray
    """[shape=(N, 3)] int64 (type, size, amount)."""
    weights: np.ndarray
    """[shape=(N,)] float32 BC weight per step: its label's confidence divided by the mean
    confidence of all the steps (so the loss keeps its scale; all 1 for true decisions)."""

    def __len__(self) -> int:
        return len(self.actions)

    def take(self, idx: np.ndarray) -> ExpertSteps:
        """The rows ``idx`` (weights as they are: normalised over the whole set)."""
        return ExpertSteps({k: v[idx] for k, v in self.obs.items()}, self.actions[idx],
                           self.weights[idx])  # fmt: skip


def expert_actions(
    dl: DecisionList, n_beats: int, *, name: str = "<labels>"
) -> tuple[np.ndarray, np.ndarray]:
    """The decision list as env actions: undecided gaps become KEEP BEAT steps (what the
    decision list's own plan does to them), so the replay covers every beat.

    Returns:
        actions [shape=(k, 3)] int64 and each one's confidence [shape=(k,)] float32 (the
        decision's; 1 for a gap's KEEP: a list that leaves beats undecided keeps them).

    Raises:
        DatasetError: the list does not fit a grid of ``n_beats`` beats.
    """
    dl.validate(n_beats, name=name)
    state = sm.initial_state(n_beats, downbeat_phase=dl.downbeat_phase)
    out: list[tuple[int, int, int]] = []
    conf: list[float] = []
    for d in dl.decisions:
        gap = d.beat - state.cursor
        out.extend([_KEEP_BEAT] * gap)
        conf.extend([1.0] * gap)
        state, _ = sm.keep_until(state, d.beat)
        state, _ = sm.step(state, d.type, d.size, d.amount)
        out.append((int(d.type), int(d.size), int(d.amount)))
        conf.append(float(d.confidence))
    out.extend([_KEEP_BEAT] * (n_beats - state.cursor))
    conf.extend([1.0] * (n_beats - state.cursor))
    return np.asarray(out, np.int64).reshape(-1, 3), np.asarray(conf, np.float32)


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
    actions, confidence = expert_actions(dl, grid.n_beats, name=str(label_path))
    return RawTrack(
        name=name,
        analysis=analyze_on_grid(audio, grid),
        target_ratio=ratio,
        actions=actions,
        confidence=confidence,
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
            expert_confidence=r.confidence,
            target_ratio=r.target_ratio,
        )
        for r in raws
    ]
    return tables, normalizer


def replay(env: EditingEnv, index: int) -> list[dict[str, Any]]:
    """Replay track ``index``'s expert list through ``env``: one step per entry, observations
    as dicts of arrays."""
    table = env.tables[index]
    obs, _ = env.reset(seed=0, options={"track_index": index})
    steps = []
    for t, action in enumerate(table.expert_actions):
        new_obs, reward, terminated, truncated, info = env.step(action)
        if info["action_repaired"]:
            raise DatasetError(f"{table.name}: expert action {t} is masked in the env; rebuild")
        steps.append(
            {
                "eps_id": table.name,
                "obs": obs,
                "actions": [int(x) for x in action],
                "rewards": float(reward),
                "new_obs": new_obs,
                "terminateds": bool(terminated),
                "truncateds": bool(truncated),
                "t": t,
                "weights": float(table.expert_confidence[t]),
            }
        )
        obs = new_obs
        if terminated or truncated:
            break
    return steps


def _episode_table(steps: list[dict[str, Any]]) -> Any:
    """The plain-array Parquet table of one replay (see the module docstring)."""
    import pyarrow as pa

    keys = sorted(steps[0]["obs"])
    columns: dict[str, Any] = {
        k: [s[k] for s in steps]
        for k in ("eps_id", "t", "actions", "rewards", "terminateds", "truncateds")
    }
    columns["weights"] = pa.array([s["weights"] for s in steps], pa.float32())
    shapes = {}
    for k in keys:
        x = np.stack([np.asarray(s["obs"][k], np.float32) for s in steps])
        shapes[k] = list(x.shape[1:])
        columns[f"obs.{k}"] = pa.array(list(x.reshape(len(steps), -1)), pa.list_(pa.float32()))
    meta = {"format": EPISODE_FORMAT, "obs_shapes": shapes}
    return pa.table(columns, metadata={FORMAT_KEY: json.dumps(meta).encode()})


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
    import pyarrow.parquet as pq

    out = Path(out)
    save_tables(out / TABLES_DIR, tables, normalizer)
    env = EditingEnv({"tables": tables, **env_config})
    counts = {}
    for i, table in enumerate(tables):
        steps = replay(env, i)
        with atomic_path(out / EPISODES_DIR / f"{table.name}.parquet") as tmp:
            pq.write_table(_episode_table(steps), tmp)
        counts[table.name] = len(steps)
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


def load_expert_arrays(episodes: str | Path) -> ExpertSteps:
    """All expert steps of an episodes folder, stacked (no unpickling), with their BC weights
    (label confidence over its mean; see :class:`ExpertSteps`).

    Raises:
        DatasetError: no Parquet files in the folder, a file in the older packed format, or
            a file whose columns do not match its recorded shapes.
    """
    paths = sorted(Path(episodes).glob("*.parquet"))
    if not paths:
        raise DatasetError(f"{episodes}: no expert episodes (*.parquet); run `editorbot bc-data`")
    parts = [read_episode(p) for p in paths]
    keys = sorted(parts[0][0])
    for path, (obs, _) in zip(paths, parts, strict=True):
        if sorted(obs) != keys or any(obs[k].shape[1:] != parts[0][0][k].shape[1:] for k in keys):
            raise DatasetError(f"{path}: observation keys or shapes differ from {paths[0].name}")
    stacked = {k: np.concatenate([o[k] for o, _ in parts]) for k in keys}
    confidence = np.concatenate([read_weights(p) for p in paths])
    mean = float(confidence.mean()) if len(confidence) else 1.0
    if mean <= 0:
        raise DatasetError(f"{episodes}: every expert step has label confidence 0; nothing to fit")
    weights = (confidence / mean).astype(np.float32)
    return ExpertSteps(stacked, np.concatenate([a for _, a in parts]), weights)


def read_weights(path: Path) -> np.ndarray:
    """[shape=(N,)] float32 label confidence per step of one episode file (1 where the file
    predates the ``weights`` column).

    Raises:
        DatasetError: a weight outside [0, 1].
    """
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    if "weights" not in schema.names:
        return np.ones(pq.read_metadata(path).num_rows, np.float32)
    column = pq.read_table(path, columns=["weights"]).column("weights")
    w = np.asarray(column.to_numpy(), np.float32)
    if not np.all((w >= 0) & (w <= 1)):
        raise DatasetError(f"{path}: step weights outside [0, 1]; regenerate with bc-data")
    return w


def check_episodes(episodes: str | Path) -> None:
    """Check, from the schemas alone, that every episode file is in this format.

    Raises:
        DatasetError: as :func:`load_expert_arrays` would.
    """
    paths = sorted(Path(episodes).glob("*.parquet"))
    if not paths:
        raise DatasetError(f"{episodes}: no expert episodes (*.parquet); run `editorbot bc-data`")
    for path in paths:
        _format_meta(path)


def _format_meta(path: Path) -> bytes:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as e:
        raise DatasetError(f"{path}: not a readable Parquet file ({e})") from e
    raw = (schema.metadata or {}).get(FORMAT_KEY)
    if raw is None:
        raise DatasetError(
            f"{path}: BC episodes in the older packed (pickle) format, which is not read because "
            "unpickling can run code; regenerate them with `editorbot bc-data`"
        )
    return bytes(raw)


def read_episode(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    import pyarrow.parquet as pq

    raw = _format_meta(path)
    try:
        meta = json.loads(raw)
        shapes = {str(k): tuple(int(n) for n in v) for k, v in meta["obs_shapes"].items()}
        if meta.get("format") != EPISODE_FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {EPISODE_FORMAT}")
        columns = ["actions", *(f"obs.{k}" for k in shapes)]
        table = pq.read_table(path, columns=columns)
        n = table.num_rows
        actions = _flat(table, "actions", np.int64).reshape(n, 3)
        obs = {k: _flat(table, f"obs.{k}", np.float32).reshape(n, *s) for k, s in shapes.items()}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DatasetError(f"{path}: malformed BC episodes ({e}); regenerate with bc-data") from e
    return obs, actions


def _flat(table: Any, column: str, dtype: type) -> np.ndarray:
    values = table.column(column).combine_chunks().flatten()
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype)
