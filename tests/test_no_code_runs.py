"""No supplied file runs code: each loader of a foreign file is given a pickle payload that
would create a marker file if unpickled; the loader refuses it with one line and the marker
never appears. (The RL checkpoint's two paths are in ``test_inference_policy.py``.)"""

from __future__ import annotations

import json
import pathlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from env_tables import make_table

from editorbot.envs.editing_env import EditingEnv
from editorbot.envs.track_table import FeatureNormalizer
from editorbot.errors import CheckpointError, DatasetError
from editorbot.models.supervised import (
    CHECKPOINT_JSON,
    SupervisedConfig,
    SupervisedEditModel,
    load_checkpoint,
    save_checkpoint,
)
from editorbot.training import bc_data


class Payload:
    """Unpickling this creates the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_payload_pickles_run_when_unpickled(tmp_path: Path) -> None:
    """The control: the payload does run under plain ``pickle.loads``."""
    pickle.loads(pickle.dumps(Payload(tmp_path / "ran")))
    assert (tmp_path / "ran").exists()


def _bc_folder(tmp_path: Path) -> Path:
    tables = [make_table(0), make_table(1)]
    normalizer = FeatureNormalizer.fit([t.features for t in tables])
    bc_data.write_bc_data(tmp_path / "bc", tables, normalizer, env_config={"window": 64})
    return tmp_path / "bc"


def test_bc_episodes_are_plain_arrays_that_round_trip(tmp_path: Path) -> None:
    out = _bc_folder(tmp_path)
    expert = bc_data.load_expert_arrays(out / bc_data.EPISODES_DIR)
    obs, actions = expert.obs, expert.actions
    env = EditingEnv({"tables": [make_table(0), make_table(1)], "window": 64})
    steps = bc_data.replay(env, 0) + bc_data.replay(env, 1)
    assert actions.shape == (len(steps), 3)
    np.testing.assert_array_equal(actions, [s["actions"] for s in steps])
    for k, x in obs.items():  # exact: float32 stored as float32
        np.testing.assert_array_equal(x, np.stack([s["obs"][k] for s in steps]), err_msg=k)


def test_packed_bc_episodes_are_refused_not_unpickled(tmp_path: Path) -> None:
    """An episode file in RLlib's packed format (cloudpickle inside) gets one line to
    regenerate, and its cells are never unpacked."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from ray.rllib.utils.compression import pack

    folder = tmp_path / "episodes"
    folder.mkdir()
    cell = pack(Payload(tmp_path / "ran"))
    pq.write_table(pa.table({"obs": [cell], "actions": [[0, 0, 2]]}), folder / "a.parquet")
    with pytest.raises(DatasetError, match=r"a\.parquet: .*older packed.*editorbot bc-data"):
        bc_data.load_expert_arrays(folder)
    assert not (tmp_path / "ran").exists()


def test_demucs_weights_with_a_payload_do_not_run(tmp_path: Path) -> None:
    from demucs.htdemucs import HTDemucs

    from editorbot.audio.stems import load_separator

    package = {"klass": HTDemucs, "args": (), "kwargs": {}, "state": Payload(tmp_path / "ran")}
    torch.save(package, tmp_path / "evil0001.th")
    (tmp_path / "bag.yaml").write_text("models: ['evil0001']\n")
    for name in ("evil0001", "bag"):  # the file itself, and through a bag that names it
        with pytest.raises(CheckpointError, match=r"evil0001\.th: not a plain demucs weights"):
            load_separator(tmp_path, name=name)
    with pytest.raises(CheckpointError, match="not a plain demucs weights"):
        load_separator(tmp_path / "evil0001.th")
    assert not (tmp_path / "ran").exists()


@pytest.fixture
def supervised_ckpt(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "sup", SupervisedEditModel(SupervisedConfig.tiny()))


def test_supervised_weights_payload_and_escape_are_refused(
    supervised_ckpt: Path, tmp_path: Path
) -> None:
    model, _ = load_checkpoint(supervised_ckpt)  # the intact one loads
    assert isinstance(model, SupervisedEditModel)
    meta_path = supervised_ckpt / CHECKPOINT_JSON
    meta = json.loads(meta_path.read_text())
    outside = tmp_path / "outside.pt"
    torch.save(model.state_dict(), outside)  # loadable weights, but outside the folder
    for name in ("../outside.pt", str(outside)):
        meta_path.write_text(json.dumps({**meta, "weights": name}))
        with pytest.raises(CheckpointError, match="must name a file inside"):
            load_checkpoint(supervised_ckpt)
    torch.save({"x": Payload(tmp_path / "ran")}, supervised_ckpt / "weights.pt")
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="cannot read the weights"):
        load_checkpoint(supervised_ckpt)
    assert not (tmp_path / "ran").exists()
