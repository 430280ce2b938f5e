"""cluster.yaml passes the validation `ray up` runs (defaults filled in, then Ray's JSON schema
and its consistency checks), opens nothing but SSH to the outside, keeps token authentication
on, and offers the custom resources tune_configs/ppo_cluster.yaml pins its actors with —
without launching."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_validates_against_ray_schema() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(_load())  # merges the provider's defaults, as `ray up` does
    validate_config(config)  # raises jsonschema.ValidationError / ValueError on a bad key
    types = config["available_node_types"]
    assert types["learner_gpu"]["resources"]["GPU"] >= 1
    assert types["rollout_cpu"]["max_workers"] > types["rollout_cpu"]["min_workers"]
    assert types["head"]["resources"]["CPU"] == 0  # no rollouts on the head


def test_cluster_yaml_opens_only_ssh_and_keeps_dashboard_on_loopback() -> None:
    config = _load()
    rules = config["provider"]["security_group"]["IpPermissions"]
    assert [(r["FromPort"], r["ToPort"]) for r in rules] == [(22, 22)]
    for rule in rules:
        for ip_range in rule["IpRanges"]:
            assert ip_range["CidrIp"] != "0.0.0.0/0"  # SSH only from a configured range
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start
    # Token authentication on for every node: Ray 2.60's `ray start` turns it on only with
    # RAY_AUTH_MODE=token or a token file, so both are given, the token mounted on every node.
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [c for c in config[key] if "bin/ray start" in c]
        assert start and all("RAY_AUTH_MODE=token" in c for c in start), key
    assert any(p.endswith("/.ray/auth_token") for p in config["file_mounts"])


def test_ppo_cluster_pins_runners_and_learners_to_node_types_cluster_yaml_defines() -> None:
    from editorbot.training.ppo import load_run_config, ppo_config

    types = _load()["available_node_types"]
    run = load_run_config(ROOT / "tune_configs" / "ppo_cluster.yaml")
    algo = ppo_config(run.ppo, env_config={}, module=run.module)
    runner_res = algo.custom_resources_per_env_runner
    learner_res = algo.custom_resources_per_learner
    assert runner_res and learner_res  # both pinned, and the settings reach RLlib's config

    def offering(wanted: dict) -> list[str]:
        return [
            name
            for name, t in types.items()
            if all(t["resources"].get(k, 0) >= v for k, v in wanted.items())
        ]

    # Env runners fit only the CPU rollout nodes, learners only the GPU nodes: a renamed
    # resource on either side would leave the actors waiting for a node type that never comes.
    assert offering(runner_res) == ["rollout_cpu"]
    assert offering({**learner_res, "GPU": run.ppo.num_gpus_per_learner}) == ["learner_gpu"]
    rollout = types["rollout_cpu"]["resources"]
    # One runner per CPU: the custom resource never lets more runners onto a node than CPUs.
    assert rollout["rollout"] / runner_res["rollout"] <= rollout["CPU"]


def test_every_node_has_a_scoped_instance_profile_and_requires_imdsv2() -> None:
    """No node falls back to the launcher's broad default role; workers get the S3-only
    profile, the head its own (autoscaler rights); metadata needs a session token (IMDSv2)."""
    text = (ROOT / "cluster.yaml").read_text()
    for placeholder in ("ACCOUNT_ID_PLACEHOLDER", "RUN_BUCKET_PLACEHOLDER"):
        assert placeholder in text  # named so nobody mistakes them for real values
    for name, node_type in _load()["available_node_types"].items():
        node = node_type["node_config"]
        arn = node["IamInstanceProfile"]["Arn"]
        expected = "editorbot-head" if name == "head" else "editorbot-worker"
        assert arn == f"arn:aws:iam::ACCOUNT_ID_PLACEHOLDER:instance-profile/{expected}", name
        assert node["MetadataOptions"]["HttpTokens"] == "required", name
        assert node["MetadataOptions"]["HttpPutResponseHopLimit"] == 1, name
