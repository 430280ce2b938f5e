"""A local S3-compatible server (moto's server mode) on loopback, for storage tests.

It is a separate process on a free 127.0.0.1 port, stopped by its PID. :attr:`S3Server.env`
holds the standard AWS variables that point any S3 client at it (editorbot's storage module,
pyarrow, Ray), so a test passes them to the processes it starts exactly as a user would set them
for AWS or MinIO.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from local_cluster import HOST, free_port


class S3Server:
    """moto's S3 on ``127.0.0.1:<free port>`` with one bucket, :attr:`bucket`."""

    def __init__(self, log_dir: Path, bucket: str = "editorbot-test") -> None:
        self.port = free_port()
        self.endpoint = f"http://{HOST}:{self.port}"
        self.bucket = bucket
        self.env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self._log = log_dir / "moto_server.log"
        self._proc: subprocess.Popen | None = None

    def start(self, timeout_sec: float = 60.0) -> S3Server:
        with self._log.open("wb") as out:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_sec
        while not self._answers():
            if time.monotonic() > deadline or self._proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"moto server did not start (log: {self._log})")
            time.sleep(0.3)
        self._create_bucket()
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2):
                return True
        except OSError:
            return False

    def _create_bucket(self) -> None:
        import pyarrow.fs as pafs

        pafs.S3FileSystem(
            endpoint_override=f"{HOST}:{self.port}",
            scheme="http",
            access_key=self.env["AWS_ACCESS_KEY_ID"],
            secret_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region=self.env["AWS_DEFAULT_REGION"],
            allow_bucket_creation=True,
        ).create_dir(self.bucket)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc = None
