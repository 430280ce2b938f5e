"""cluster.yaml passes the validation `ray up` runs (defaults filled in, then Ray's JSON schema
and its consistency checks), and opens nothing but SSH to the outside — without launching."""

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
    assert "RAY_AUTH_MODE=disabled" not in head_start  # token authentication stays on
