"""Storage locations (``editorbot.storage``): paths, ``file://`` and ``s3://`` URIs.

S3 is moto's server on loopback (``tests/s3_server.py``), reached through the standard AWS
variables exactly as AWS or MinIO would be. The multi-node run against it is
``tests/test_cluster_storage.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from s3_server import S3Server

from editorbot import storage
from editorbot.cli import main as cli
from editorbot.storage import RunStorage, StorageError

CONFIG = Path(__file__).resolve().parents[1] / "tune_configs" / "ppo_debug.yaml"


@pytest.fixture
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    return s3


def _folder(root: Path) -> Path:
    """A small checkpoint-like folder: a nested file, a binary file and its description."""
    (root / "rl_module").mkdir(parents=True)
    (root / "rl_module" / "policy_net.pt").write_bytes(bytes(range(256)) * 40)
    (root / "normalizer.json").write_text('{"mean": [0.5]}')
    (root / "editorbot_checkpoint.json").write_text('{"kind": "rl"}')
    return root


def _contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_uri_survives_argument_parsing_and_a_path_stays_a_path() -> None:
    # pathlib would make s3://b/run into s3:/b/run (a local folder named "s3:").
    assert storage.as_location("s3://bucket/run") == "s3://bucket/run"
    assert storage.as_location("models/rl") == Path("models/rl")
    assert storage.join("s3://bucket/run/", "best") == "s3://bucket/run/best"
    assert storage.join(Path("models/rl"), "best") == Path("models/rl/best")


def test_a_local_path_is_used_in_place(tmp_path: Path) -> None:
    store = RunStorage.open(tmp_path / "run")
    assert not store.remote and store.local == tmp_path / "run"
    _folder(store.local / "best")
    store.push("best")  # nothing to copy: the run writes where it lives
    assert storage.local_copy(tmp_path / "run" / "best") == tmp_path / "run" / "best"


@pytest.mark.parametrize("scheme", ["file", "s3"])
def test_a_folder_goes_up_and_comes_back_byte_for_byte(
    scheme: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if scheme == "s3":
        server = request.getfixturevalue("s3_env")
        location = f"s3://{server.bucket}/roundtrip"
    else:
        location = f"file://{tmp_path / 'remote'}"
    monkeypatch.setenv("EDITORBOT_CACHE", str(tmp_path / "cache"))
    store = RunStorage.open(location)
    assert store.remote and store.local.is_relative_to(tmp_path / "cache")
    sent = _folder(store.local / "best")
    store.push("best", last="editorbot_checkpoint.json")
    (store.local / "progress.jsonl").write_text('{"iteration": 1}\n')
    store.push("progress.jsonl")

    copy = storage.local_copy(f"{location}/best", require="editorbot_checkpoint.json")
    assert copy != sent and _contents(copy) == _contents(sent)
    assert storage.exists(f"{location}/progress.jsonl")

    # A second push replaces the folder whole: a file the new one lacks is gone.
    (sent / "normalizer.json").unlink()
    store.push("best", last="editorbot_checkpoint.json")
    again = storage.local_copy(f"{location}/best")
    assert "normalizer.json" not in _contents(again)


def test_a_fresh_run_of_a_uri_starts_with_an_empty_staging_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An earlier run of the same URI left rows and a checkpoint in the staging cache: a new
    # run must not append to them (--resume keeps them: it continues that run).
    monkeypatch.setenv("EDITORBOT_CACHE", str(tmp_path / "cache"))
    location = f"file://{tmp_path / 'remote'}"
    earlier = RunStorage.open(location)
    (earlier.local / "checkpoints" / "iter_0001").mkdir(parents=True)
    (earlier.local / "progress.jsonl").write_text('{"iteration": 1}\n')
    assert (RunStorage.open(location).local / "progress.jsonl").is_file()  # resume: kept
    fresh = RunStorage.open(location, fresh=True)
    assert fresh.local == earlier.local and list(fresh.local.iterdir()) == []


def test_a_folder_without_its_description_is_refused_as_incomplete(s3_env: S3Server) -> None:
    # What a reader sees while an upload is under way (the description goes last).
    location = f"s3://{s3_env.bucket}/half"
    storage.upload_file(Path(__file__), f"{location}/rl_module/policy_net.pt")
    with pytest.raises(StorageError, match=r"no editorbot_checkpoint\.json"):
        storage.local_copy(location, require="editorbot_checkpoint.json")
    with pytest.raises(StorageError, match="nothing there"):
        storage.local_copy(f"s3://{s3_env.bucket}/never-written")


@pytest.mark.parametrize(
    ("location", "said"),
    [
        ("s3://no-such-bucket/run", "Bucket 'no-such-bucket' not found"),
        ("s3:///run", "no bucket name"),
    ],
)
def test_an_unusable_bucket_is_named_in_one_line(
    location: str, said: str, s3_env: S3Server
) -> None:
    with pytest.raises(StorageError) as e:
        storage.check_writable(location)
    assert str(e.value).startswith(location) and said in str(e.value)
    assert "\n" not in str(e.value)


def test_an_unreachable_endpoint_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from local_cluster import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nobody listens
    with pytest.raises(StorageError, match=r"^s3://bucket/run: cannot write there .*connect"):
        storage.check_writable("s3://bucket/run")


@pytest.fixture(scope="module")
def read_only_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A second moto server that checks credentials: its keys may read its bucket, not write."""
    server = S3Server(tmp_path_factory.mktemp("s3_read_only"), "read-only-bucket", read_only=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_bucket_the_credentials_cannot_write_is_named_in_one_line(
    read_only_s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in read_only_s3.env.items():
        monkeypatch.setenv(key, value)
    location = f"s3://{read_only_s3.bucket}/run"
    assert storage.exists(f"s3://{read_only_s3.bucket}")  # the premise: these keys can read it
    with pytest.raises(StorageError) as e:
        storage.check_writable(location)
    message = str(e.value)
    assert message.startswith(f"{location}: cannot write there") and "\n" not in message
    assert "Access Denied" in message and "credentials" in message, message


def _unusable(case: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(location, what its error line must say) for each kind of unusable location; the
    environment is set to the server's variables (monkeypatch, undone after the test)."""
    monkeypatch = request.getfixturevalue("monkeypatch")
    if case == "local":
        # As root, mode bits do not stop a write: a folder under a regular file cannot exist.
        (tmp_path / "a_file").write_text("not a folder")
        return str(tmp_path / "a_file" / "run"), "pass a folder this user can create and write"
    server = request.getfixturevalue("read_only_s3" if case == "read-only" else "s3")
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    if case == "read-only":
        return f"s3://{server.bucket}/run", "Access Denied"
    return "s3://no-such-bucket/run", "Bucket 'no-such-bucket' not found"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", ["train rl", "tune"])
@pytest.mark.parametrize("case", ["missing bucket", "read-only", "local"])
def test_an_unusable_run_location_stops_the_cli_in_one_line_before_ray_starts(
    command: str,
    case: str,
    tiny_bc_dir: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import ray

    location, said = _unusable(case, request, tmp_path)
    flag = "--save-dir" if command == "train rl" else "--storage"
    args = [str(CONFIG)] if command == "tune" else ["--config", str(CONFIG)]
    running = ray.is_initialized()
    assert cli([*command.split(), *args, "--bc-data", str(tiny_bc_dir), flag, location]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"editorbot: error: {location}: cannot write there ("), err
    assert said in err[0], err
    fix = "pass a folder" if case == "local" else "the credentials (they need write access)"
    assert fix in err[0], err
    assert ray.is_initialized() == running  # no Ray instance (no actor) was started for it


def test_edit_names_a_checkpoint_uri_with_nothing_there(
    s3_env: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import soundfile as sf

    from editorbot.datasets.testsignals import click_track

    wav = tmp_path / "in.wav"
    track = click_track(tempo_bpm=120.0, duration_sec=8.0)
    sf.write(wav, track.y, track.sr)
    uri = f"s3://{s3_env.bucket}/missing/best"
    assert cli(["edit", str(wav), "--checkpoint", uri, "--output", str(tmp_path / "o.wav")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"editorbot: error: {uri}: nothing there; pass a folder a run wrote "
                   "(SAVE_DIR/best)"]  # fmt: skip


def _bucket_json_rows(location: str) -> list[dict[str, Any]]:
    fs, path = storage.filesystem(location)
    with fs.open_input_stream(path) as f:
        return [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(600)
def test_train_rl_resumes_from_the_bucket_on_a_machine_with_an_empty_staging_folder(
    ray_session: object, s3_env: S3Server, tiny_bc_dir: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    run = f"s3://{s3_env.bucket}/resumed"
    argv = ["train", "rl", "--config", str(CONFIG), "--bc-data", str(tiny_bc_dir),
            "--save-dir", run]  # fmt: skip
    monkeypatch.setenv("EDITORBOT_CACHE", str(tmp_path / "first_machine"))
    assert cli([*argv, "--stop-iters", "1"]) == 0
    best_before = storage.local_copy(f"{run}/best", require="editorbot_checkpoint.json")
    kept = _contents(best_before)

    # Another machine: nothing staged locally, everything it resumes from is in the bucket.
    monkeypatch.setenv("EDITORBOT_CACHE", str(tmp_path / "second_machine"))
    assert cli([*argv, "--stop-iters", "2", "--resume"]) == 0

    rows = _bucket_json_rows(f"{run}/progress.jsonl")
    # The iteration count continues (no BC row again, iteration 1 not redone).
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    assert not (RunStorage.open(run).local / "bc").exists()  # BC did not run on the 2nd machine
    latest = _bucket_json_rows(f"{run}/checkpoints/latest.json")
    assert latest == [{"checkpoint": "iter_0002"}]
    assert storage.exists(f"{run}/checkpoints/iter_0002/learner_group")
    best = storage.local_copy(f"{run}/best", require="editorbot_checkpoint.json")
    meta = json.loads((best / "editorbot_checkpoint.json").read_text())["validation"]
    # best/ is still the best of all three rows; it was replaced only if iteration 2 beat it.
    top = max(rows, key=lambda r: r["val_type_agreement"])
    assert meta["type_agreement"] == top["val_type_agreement"]
    if meta["iteration"] < 2:
        assert _contents(best) == kept
