"""A real two-node Ray cluster on loopback for job and failure tests (not a fixture module).

Why not ``ray.init`` or ``ray stop``: the session's in-process Ray (``conftest.ray_session``)
and other people's clusters may be running on the same machine. So each cluster here

- runs ``ray start --block`` in its own process session and is stopped by killing exactly that
  process group (``ray stop --force`` would kill every Ray on the machine);
- keeps its own ``--temp-dir``, so its ``ray_current_cluster`` file is not where a plain
  ``ray.init()`` looks (it would otherwise attach to this cluster instead of starting its own);
- uses fresh free ports, binds the dashboard and job server to 127.0.0.1 only, and turns token
  authentication off only for itself (``RAY_AUTH_MODE=disabled`` in its own environment).

Ray 2.60 has no flag that keeps its other servers on loopback: ``ray start`` replaces
``--node-ip-address=127.0.0.1`` with the machine's network address, and the GCS, the raylets
(node and object manager) and the dashboard agents' gRPC and metrics ports listen on all
interfaces, the runtime-env agent and the Ray Client server on that address
(:meth:`LocalCluster.listening` lists them; RESULTS.md, "Scaling"). A real cluster keeps them
behind its firewall (``cluster.yaml``: SSH only) and token authentication.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
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
    """Head (``head_cpus``) + one worker node (``worker_cpus`` and ``worker_resources``, by
    default ``{"rollout": 1}``: the custom resource that pins env runners to it)."""

    def __init__(
        self,
        head_cpus: int = 1,
        worker_cpus: int = 1,
        worker_resources: dict[str, float] | None = None,
        worker_masks: tuple[str, ...] = (),
        worker_env: dict[str, str] | None = None,
        worker_ip: str = HOST,
        worker_temp_dir: bool = False,
    ) -> None:
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
        self.worker_resources = {"rollout": 1} if worker_resources is None else worker_resources
        # The worker node in its own mount namespace, an empty tmpfs over each of these folders:
        # a file the driver wrote there cannot be read by path from that node. Its Ray temp dir
        # is then outside them (under /var/tmp, short for Ray's Unix sockets).
        # The head's own temp dir (its logs, sockets and session files) is among them.
        self.worker_masks = (*worker_masks, self.temp_dir) if worker_masks else ()
        self.worker_env = {**self.env, **(worker_env or {})}
        # A loopback address of its own (127.0.0.2) makes the worker another machine to Ray: RLlib
        # tells nodes apart by IP (it copies checkpoints between nodes only when theirs differ).
        self.worker_ip = worker_ip
        # ``worker_temp_dir`` gives the worker a Ray temp dir of its own without masks, as a
        # machine of its own has: two nodes sharing one also share the runtime-env caches, and
        # the worker's agent deleted a job's working_dir while the driver on the head ran from it.
        self.worker_temp_dir = (
            tempfile.mkdtemp(prefix="ebw_", dir="/var/tmp")
            if worker_masks or worker_temp_dir
            else None
        )

    def start(self, timeout_sec: float = 180.0) -> LocalCluster:
        """Start the head, wait for it, then the worker; ``timeout_sec`` [s] bounds both (a
        loaded 2-core machine took over 90 s). On failure the ``ray start`` output and Ray's
        logs stay in :attr:`temp_dir` and the error names it."""
        deadline = time.monotonic() + timeout_sec
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
        self._wait_for_nodes(1, deadline)  # a worker started before its GCS may give up
        worker_args = [
            f"--address={self.address}",
            f"--num-cpus={self.worker_cpus}",
            f"--resources={json.dumps(self.worker_resources)}",
        ]
        prefix: list[str] = []
        if self.worker_temp_dir is not None:
            worker_args.append(f"--temp-dir={self.worker_temp_dir}")
        if self.worker_masks:
            mounts = " && ".join(f"mount -t tmpfs none {m}" for m in self.worker_masks)
            prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                      f'{mounts} && exec "$@"', "sh"]  # fmt: skip
        self._start(worker_args, prefix=prefix, env=self.worker_env, ip=self.worker_ip)
        self._wait_for_nodes(2, deadline)
        return self

    def _wait_for_nodes(self, count: int, deadline: float) -> None:
        while self.alive_nodes() < count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self._procs):
                self.stop(keep_logs=True)
                raise RuntimeError(
                    f"local Ray cluster: {self.alive_nodes()} of {count} nodes up "
                    f"(ray start output and logs: {self.temp_dir})"
                )
            time.sleep(1.0)

    def _start(
        self,
        args: list[str],
        prefix: list[str] | None = None,
        env: dict[str, str] | None = None,
        ip: str = HOST,
    ) -> None:
        port_args = [
            f"--node-ip-address={ip}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            "--disable-usage-stats",
        ]
        log = Path(self.temp_dir) / f"ray_start_{len(self._procs)}.log"
        with log.open("wb") as out:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                [*(prefix or []), RAY, "start", "--block", *args, *port_args],
                env=self.env if env is None else env,
                stdout=out,
                stderr=subprocess.STDOUT,
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

    def stop(self, keep_logs: bool = False) -> None:
        """Kill this cluster's process groups only (raylets, GCS, workers, job drivers), and
        remove its temp dir unless ``keep_logs``."""
        for sig in (signal.SIGTERM, signal.SIGKILL):  # TERM lets `ray start --block` clean up
            for proc in self._procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
            for proc in self._procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        self._procs.clear()
        if not keep_logs:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            if self.worker_temp_dir is not None:
                shutil.rmtree(self.worker_temp_dir, ignore_errors=True)

    def listening(self) -> list[tuple[str, int, str]]:
        """(local address, port, process name) of every TCP socket this cluster's processes
        listen on, from ``ss -ltnp`` (``*`` / ``0.0.0.0`` / ``[::]``: all interfaces)."""
        groups = {p.pid for p in self._procs}
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
        sockets = []
        for line in out.splitlines():
            fields = line.split()
            if len(fields) < 6:
                continue
            owners = re.findall(r'\("([^"]+)",pid=(\d+)', fields[5])
            names = [name for name, pid in owners if _group_of(int(pid)) in groups]
            if names:
                address, _, port = fields[3].rpartition(":")
                sockets.append((address, int(port), names[0]))
        return sockets

    def node_ips(self) -> list[str]:
        with urllib.request.urlopen(f"{self.dashboard}/nodes?view=summary", timeout=5) as r:
            return [n["raylet"]["nodeManagerAddress"] for n in json.load(r)["data"]["summary"]]


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
