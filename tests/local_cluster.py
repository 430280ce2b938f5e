"""A real two-node Ray cluster on loopback for job and failure tests (not a fixture module).

Why not ``ray.init`` or ``ray stop``: the session's in-process Ray (``conftest.ray_session``)
and other people's clusters may be running on the same machine. So each cluster here

- runs ``ray start --block`` in its own process session and is stopped by killing exactly that
  process group (``ray stop --force`` would kill every Ray on the machine);
- keeps its own ``--temp-dir``, so its ``ray_current_cluster`` file is not where a plain
  ``ray.init()`` looks (it would otherwise attach to this cluster instead of starting its own);
- binds the GCS, dashboard and job server to 127.0.0.1 with fresh free ports, and turns token
  authentication off only for itself (``RAY_AUTH_MODE=disabled`` in its own environment).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """Head (``head_cpus``) + one worker node (``worker_cpus`` and ``{"rollout": 1}``)."""

    def __init__(self, head_cpus: int = 1, worker_cpus: int = 1) -> None:
        self.port, self.dashboard_port = free_port(), free_port()
        self.address = f"{HOST}:{self.port}"
        self.dashboard = f"http://{HOST}:{self.dashboard_port}"
        # Short path: Ray's Unix sockets live under it (108-byte limit).
        self.temp_dir = tempfile.mkdtemp(prefix="ebr_", dir="/tmp")
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "disabled",
            "OMP_NUM_THREADS": "1",
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        self.env.pop("RAY_ADDRESS", None)
        # As an activated virtualenv would: job entrypoints find the `editorbot` script.
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        self._procs: list[subprocess.Popen] = []
        self.head_cpus, self.worker_cpus = head_cpus, worker_cpus

    def start(self, timeout_sec: float = 90.0) -> LocalCluster:
        self._start(
            [
                f"--port={self.port}",
                "--head",
                f"--num-cpus={self.head_cpus}",
                f"--dashboard-host={HOST}",
                f"--dashboard-port={self.dashboard_port}",
                f"--ray-client-server-port={free_port()}",
                f"--temp-dir={self.temp_dir}",
                "--include-dashboard=true",
            ]
        )
        self._start(
            [
                f"--address={self.address}",
                f"--num-cpus={self.worker_cpus}",
                '--resources={"rollout": 1}',
            ]
        )
        deadline = time.monotonic() + timeout_sec
        while self.alive_nodes() < 2:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self._procs):
                self.stop()
                raise RuntimeError(f"local Ray cluster did not come up (logs: {self.temp_dir})")
            time.sleep(1.0)
        return self

    def _start(self, args: list[str]) -> None:
        port_args = [
            f"--node-ip-address={HOST}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            "--disable-usage-stats",
        ]
        proc = subprocess.Popen(
            [RAY, "start", "--block", *args, *port_args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._procs.append(proc)

    def alive_nodes(self) -> int:
        try:
            with urllib.request.urlopen(f"{self.dashboard}/nodes?view=summary", timeout=5) as r:
                summary = json.load(r)["data"]["summary"]
        except (OSError, KeyError, ValueError):
            return 0
        return sum(1 for n in summary if n.get("raylet", {}).get("state") == "ALIVE")

    def stop(self) -> None:
        """Kill this cluster's process groups only (raylets, GCS, workers, job drivers)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):  # TERM lets `ray start --block` clean up
            for proc in self._procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
            for proc in self._procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        self._procs.clear()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def node_ips(self) -> list[str]:
        with urllib.request.urlopen(f"{self.dashboard}/nodes?view=summary", timeout=5) as r:
            return [n["raylet"]["nodeManagerAddress"] for n in json.load(r)["data"]["summary"]]
