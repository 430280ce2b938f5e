"""The plain-PyTorch policy (``EditPolicyNet``) against the RLModule it is factored out of.

``editorbot edit`` runs the policy without RLlib; these tests show it is the same policy: the
same logits, greedy and sampled actions on random and on real environment observations, a whole
episode included, from weights saved next to the RLlib checkpoint and read back without pickle.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from env_tables import make_table
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule

from editorbot.editing.actions import N_AMOUNTS, N_SIZES, N_TYPES
from editorbot.envs import spaces as sp
from editorbot.envs.editing_env import EditingEnv
from editorbot.errors import CheckpointError
from editorbot.inference.rl import run_policy
from editorbot.models.distribution import AutoregressiveEditDistribution, unpack_logits
from editorbot.models.policy_net import (
    POLICY_JSON,
    POLICY_WEIGHTS,
    EditPolicyNet,
    greedy_actions,
    load_policy_net,
    sample_actions,
)
from editorbot.models.rl_module import EditorRLModule, ModuleConfig

CFG = ModuleConfig.tiny()
B = 32


@pytest.fixture(scope="module")
def env() -> EditingEnv:
    return EditingEnv({"tables": [make_table(0), make_table(1, n_phrases=12)]})


@pytest.fixture(scope="module")
def module(env: EditingEnv) -> EditorRLModule:
    torch.manual_seed(0)
    m = EditorRLModule(observation_space=env.observation_space, action_space=env.action_space,
                       model_config=dataclasses.asdict(CFG))  # fmt: skip
    return m.eval()


@pytest.fixture(scope="module")
def saved(module: EditorRLModule, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("module") / "rl_module"
    module.save_to_path(str(path))
    return path


def _random_obs(env: EditingEnv, seed: int, n: int = B) -> dict[str, torch.Tensor]:
    """``n`` random observations of the env's space, with sparse masks (KEEP/BEAT/NEUTRAL on)."""
    rng = np.random.default_rng(seed)
    W, F_tok = env.observation_space[sp.OBS_TOKENS].shape
    (G,) = env.observation_space[sp.OBS_GLOBALS].shape
    type_mask = (rng.random((n, N_TYPES)) < 0.3).astype(np.float32)
    size_mask = (rng.random((n, N_TYPES, N_SIZES)) < 0.4).astype(np.float32)
    amount_mask = (rng.random((n, N_TYPES, N_AMOUNTS)) < 0.4).astype(np.float32)
    type_mask[:, 0], size_mask[:, :, 0], amount_mask[:, :, 2] = 1.0, 1.0, 1.0
    obs = {
        sp.OBS_TOKENS: rng.normal(size=(n, W, F_tok)).astype(np.float32),
        sp.OBS_GLOBALS: rng.normal(size=(n, G)).astype(np.float32),
        sp.OBS_TYPE_MASK: type_mask,
        sp.OBS_SIZE_MASK: size_mask,
        sp.OBS_AMOUNT_MASK: amount_mask,
        sp.OBS_AUX_TARGETS: np.zeros((n, sp.N_AUX), np.float32),
    }
    return {k: torch.from_numpy(v) for k, v in obs.items()}


def _rllib_dist(module: EditorRLModule, obs: dict[str, torch.Tensor]) -> Any:
    out = module.forward_inference({Columns.OBS: obs})
    return AutoregressiveEditDistribution.from_logits(out[Columns.ACTION_DIST_INPUTS])


def _rllib_episode(module: EditorRLModule, env: EditingEnv, track: int, *, sample: bool,
                   seed: int) -> np.ndarray:  # fmt: skip
    """The seed's inference loop, through RLlib (what ``run_policy`` did before the plain net)."""
    torch.manual_seed(seed)
    obs, _ = env.reset(seed=seed, options={"track_index": track})
    actions, done = [], False
    while not done:
        batch = {k: torch.from_numpy(v[None]) for k, v in obs.items()}
        with torch.no_grad():
            dist = _rllib_dist(module, batch)
        action = (dist.sample() if sample else dist.to_deterministic().sample())[0].numpy()
        obs, _, terminated, truncated, _ = env.step(action)
        actions.append(action)
        done = terminated or truncated
    return np.asarray(actions, np.int64)


def test_float_min_is_rllibs() -> None:
    from ray.rllib.utils.torch_utils import FLOAT_MIN

    from editorbot.models import policy_net

    assert policy_net.FLOAT_MIN == FLOAT_MIN  # masked logits must be what RLlib's were


def test_rlmodule_state_keys_are_unchanged(module: EditorRLModule) -> None:
    """Wrapping the net must not rename or duplicate parameters (RLlib checkpoints load by key)."""
    keys = set(module.state_dict())
    net_keys = set(module.policy_net.state_dict())
    assert net_keys <= keys and net_keys  # the net's keys are the RLModule's own
    assert not any(k.startswith("_policy_net") for k in keys)
    assert {k.split(".")[0] for k in keys} == {
        "_encoder", "_type_head", "_conditioned_heads", "_value_head", "_tempo_head",
        "_energy_head", "_phrase_head",
    }  # fmt: skip
    params = list(module.parameters())
    assert len(params) == len({id(p) for p in params})
    assert all(any(p is q for q in params) for p in module.policy_net.parameters())  # shared


def test_same_logits_and_actions_as_the_rlmodule(module: EditorRLModule, env: EditingEnv,
                                                  saved: Path) -> None:  # fmt: skip
    """Same observations → identical logits and greedy actions, before and after a save/load."""
    loaded = load_policy_net(saved)
    obs = _random_obs(env, seed=1)
    dist = _rllib_dist(module, obs)
    expected = unpack_logits(dist.inputs)
    expected_actions = dist.to_deterministic().sample()
    for net in (module.policy_net, loaded):
        with torch.inference_mode():
            logits = net(obs)
            actions = net.act(obs)
        # Tolerance 0: the same weights (float32 round-trips exactly through torch.save) run
        # through the same operations in the same order, so the numbers must be bit-identical.
        for got, want in zip(logits, expected, strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
        torch.testing.assert_close(actions, expected_actions, rtol=0, atol=0)
        torch.testing.assert_close(greedy_actions(logits), expected_actions, rtol=0, atol=0)
    masks = obs[sp.OBS_TYPE_MASK], obs[sp.OBS_SIZE_MASK], obs[sp.OBS_AMOUNT_MASK]
    rows = torch.arange(B)
    t, s, a = expected_actions.unbind(-1)
    assert bool((masks[0][rows, t] == 1).all() and (masks[1][rows, t, s] == 1).all()
                and (masks[2][rows, t, a] == 1).all())  # fmt: skip


def test_sampling_draws_the_same_actions(module: EditorRLModule, env: EditingEnv) -> None:
    obs = _random_obs(env, seed=2)
    dist = _rllib_dist(module, obs)
    with torch.inference_mode():
        logits = module.policy_net(obs)
    draws = []
    for seed in (3, 4):
        torch.manual_seed(seed)
        want = dist.sample()
        torch.manual_seed(seed)
        got = sample_actions(logits)
        torch.testing.assert_close(got, want, rtol=0, atol=0)  # same RNG draws, same order
        draws.append(got)
    assert not torch.equal(draws[0], draws[1])  # the seed matters: sampling is not greedy


@pytest.mark.parametrize("sample", [False, True])
def test_whole_episode_matches_the_rllib_loop(module: EditorRLModule, env: EditingEnv,
                                              saved: Path, sample: bool) -> None:  # fmt: skip
    """Real env observations, step after step: the loaded net makes the RLModule's edit."""
    loaded = load_policy_net(saved)
    for track in (0, 1):
        want = _rllib_episode(module, env, track, sample=sample, seed=5)
        got, terms = run_policy(loaded, env, track, sample=sample, seed=5)
        np.testing.assert_array_equal(got, want)
        assert len(got) > 1 and set(terms) >= {"agree_type", "duration"}
        via_module, _ = run_policy(module, env, track, sample=sample, seed=5)
        np.testing.assert_array_equal(via_module, want)


def test_save_with_a_given_state_writes_that_state(module: EditorRLModule, env: EditingEnv,
                                                   tmp_path: Path) -> None:  # fmt: skip
    """RLlib saves algorithm checkpoints with ``state=``: the policy files must hold that state."""
    torch.manual_seed(9)
    other = EditorRLModule(observation_space=env.observation_space,
                           action_space=env.action_space,
                           model_config=dataclasses.asdict(CFG))  # fmt: skip
    module.save_to_path(str(tmp_path / "m"), state=other.get_state())
    got = load_policy_net(tmp_path / "m").state_dict()
    for key, value in other.policy_net.state_dict().items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=0)  # a copy, not arithmetic
    restored = RLModule.from_checkpoint(str(tmp_path / "m"))  # RLlib's own files still load
    assert type(restored) is EditorRLModule


def test_net_without_rllib_builds_from_its_config(module: EditorRLModule) -> None:
    net = EditPolicyNet(module.policy_net.config, module.policy_net.encoder_config)
    assert set(net.state_dict()) == set(module.policy_net.state_dict())


def _copy(saved: Path, tmp_path: Path) -> Path:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(saved, out)
    return out


def test_bad_policy_files_are_refused(saved: Path, tmp_path: Path) -> None:
    folder = _copy(saved, tmp_path)
    (folder / POLICY_WEIGHTS).unlink()
    with pytest.raises(CheckpointError, match="cannot read the weights"):
        load_policy_net(folder)

    folder = _copy(saved, tmp_path / "a")
    meta = json.loads((folder / POLICY_JSON).read_text())
    (folder / POLICY_JSON).write_text(json.dumps({**meta, "format": "other/9"}))
    with pytest.raises(CheckpointError, match="format 'other/9'"):
        load_policy_net(folder)
    # The encoder before the static / cursor split: one line naming the file and the fix.
    (folder / POLICY_JSON).write_text(json.dumps({**meta, "format": "editorbot.policy_net/1"}))
    with pytest.raises(
        CheckpointError, match=r"a/copy/policy_net\.json: format 'editorbot\.policy_net/1'.*retrain"
    ):
        load_policy_net(folder)

    folder = _copy(saved, tmp_path / "b")
    meta["module_config"]["hidden"] *= 2  # the config no longer describes the weights
    (folder / POLICY_JSON).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not fit the config"):
        load_policy_net(folder)


class _NotATensor:
    """A pickled object of a class: what ``weights_only`` loading must refuse."""


def test_pickled_objects_are_refused(saved: Path, tmp_path: Path) -> None:
    folder = _copy(saved, tmp_path)
    torch.save({"_encoder.x": _NotATensor()}, folder / POLICY_WEIGHTS)
    with pytest.raises(CheckpointError, match="cannot read the weights"):
        load_policy_net(folder)


class _Payload:
    """Unpickling this creates ``MARKER``: proof that a file's code ran."""

    marker = ""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_checkpoint_without_policy_files_is_refused_unpickled(
    module: EditorRLModule, tmp_path: Path
) -> None:
    """No policy_net.pt: refused with one line, and RLlib's pickles in the folder never load
    (the old fallback, ``RLModule.from_checkpoint``, would have run the payload)."""
    import pickle

    from editorbot.audio.features import N_FEATURES
    from editorbot.envs.track_table import FeatureNormalizer
    from editorbot.inference.rl import MODULE_DIR, load_policy
    from editorbot.training.ppo import RLRunConfig
    from editorbot.training.rl_train import write_best

    normalizer = FeatureNormalizer(np.zeros(N_FEATURES, np.float32),
                                   np.ones(N_FEATURES, np.float32))  # fmt: skip
    best = tmp_path / "best"
    write_best(best, module, normalizer, RLRunConfig(module=CFG), {}, [make_table(0)], {})
    load_policy(best)  # the intact checkpoint loads
    for name in (POLICY_JSON, POLICY_WEIGHTS):
        (best / MODULE_DIR / name).unlink()
    payload = _Payload()
    payload.marker = str(tmp_path / "ran")
    for pkl in (best / MODULE_DIR).rglob("*.pkl"):  # class_and_ctor_args.pkl, module_state.pkl
        pkl.write_bytes(pickle.dumps(payload))
    assert list((best / MODULE_DIR).rglob("*.pkl")), "RLlib's module files are pickles"
    with pytest.raises(CheckpointError, match=r"no policy_net\.json \+ policy_net\.pt"):
        load_policy(best)
    assert not (tmp_path / "ran").exists()


def test_pickle_payload_in_the_weights_does_not_run(saved: Path, tmp_path: Path) -> None:
    folder = _copy(saved, tmp_path)
    payload = _Payload()
    payload.marker = str(tmp_path / "ran")
    torch.save({"_encoder.x": payload}, folder / POLICY_WEIGHTS)
    with pytest.raises(CheckpointError, match="cannot read the weights"):
        load_policy_net(folder)
    assert not (tmp_path / "ran").exists()


def test_run_policy_restores_each_parts_mode(module: EditorRLModule, env: EditingEnv) -> None:
    """Validation during training runs the policy in eval mode and hands the module back as it
    found it, part by part (BC fitting continues right after; evaluation stays in eval)."""
    try:
        module.eval()
        run_policy(module, env, 0)
        assert not any(m.training for m in module.modules())
        module.train()
        module._type_head.eval()  # one policy part deliberately in the other mode
        run_policy(module, env, 0)
        assert module._encoder.training and module._conditioned_heads.training
        assert not module._type_head.training
    finally:
        module.eval()


def test_policy_files_written_before_the_config_was_shared_still_load(
    saved: Path, tmp_path: Path
) -> None:
    """``policy_net.json`` as the code wrote it before ``ModuleConfig`` and ``EncoderConfig``
    shared ``EncoderSizes`` (two flat dicts, the encoder's shape first): the same keys must
    still describe the same network, so checkpoints trained then keep loading."""
    import json

    from editorbot.models.policy_net import POLICY_JSON, load_policy_net

    folder = _copy(saved, tmp_path)
    meta = json.loads((folder / POLICY_JSON).read_text())
    sizes = ["hidden", "heads", "layers", "kernel_size", "dilation", "mlp_ratio", "dropout",
             "backend"]  # fmt: skip
    heads = ["head_hidden", "embedding_dim", "separate_value_network", "n_tempo_bins",
             "n_energy_classes"]  # fmt: skip
    assert list(meta["module_config"]) == sizes + heads  # the order written then and now
    old_encoder = ["n_token_features", "n_globals", "window", *sizes]
    assert set(meta["encoder_config"]) == set(old_encoder)
    meta["encoder_config"] = {k: meta["encoder_config"][k] for k in old_encoder}
    (folder / POLICY_JSON).write_text(json.dumps(meta))
    net = load_policy_net(folder)
    assert net.encoder_config.window == meta["encoder_config"]["window"]
    reference = load_policy_net(saved)
    for k, v in reference.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k
