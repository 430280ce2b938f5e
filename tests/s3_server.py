"""A local S3-compatible server (moto's server mode) on loopback, for storage tests.

It is a separate process on a free 127.0.0.1 port, stopped by its PID. :attr:`S3Server.env`
holds the standard AWS variables that point any S3 client at it (editorbot's storage module,
pyarrow, Ray), so a test passes them to the processes it starts exactly as a user would set them
for AWS or MinIO.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from local_cluster import HOST, free_port


class S3Server:
    """moto's S3 on ``127.0.0.1:<free port>`` with one bucket, :attr:`bucket`.

    With ``read_only`` the server checks credentials against its IAM (moto's
    ``INITIAL_NO_AUTH_ACTION_COUNT``: the first requests, which set it up, pass unchecked) and
    :attr:`env` holds the keys of a user that may read the bucket but not write it.
    """

    def __init__(
        self, log_dir: Path, bucket: str = "editorbot-test", *, read_only: bool = False
    ) -> None:
        self.read_only = read_only
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
        env = dict(os.environ)
        if self.read_only:  # the set-up requests of _create_read_only_user, then IAM checks
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(len(_READ_ONLY_SETUP))
        with self._log.open("wb") as out:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout_sec
        while not self._answers():
            if time.monotonic() > deadline or self._proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"moto server did not start (log: {self._log})")
            time.sleep(0.3)
        if self.read_only:
            self._create_read_only_user()
        else:
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

    def _create_read_only_user(self) -> None:
        """The bucket, and a user allowed only to list and read it; :attr:`env` gets its keys.
        Exactly the requests of :data:`_READ_ONLY_SETUP`, which moto lets through unchecked."""
        import boto3

        keys = {"endpoint_url": self.endpoint, "region_name": self.env["AWS_DEFAULT_REGION"],
                "aws_access_key_id": "setup", "aws_secret_access_key": "setup"}  # fmt: skip
        iam = boto3.client("iam", **keys)
        boto3.client("s3", **keys).create_bucket(Bucket=self.bucket)
        iam.create_user(UserName="reader")
        # moto checks HEAD on a bucket as "s3:HeadBucket" (AWS: s3:ListBucket); no Put*.
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket", "s3:HeadBucket"],
            "Resource": [f"arn:aws:s3:::{self.bucket}", f"arn:aws:s3:::{self.bucket}/*"],
        }]}  # fmt: skip
        iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        self.env["AWS_ACCESS_KEY_ID"] = key["AccessKeyId"]
        self.env["AWS_SECRET_ACCESS_KEY"] = key["SecretAccessKey"]

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc = None


_READ_ONLY_SETUP = ("CreateBucket", "CreateUser", "PutUserPolicy", "CreateAccessKey")
"""The requests that set up a read-only server, unchecked by moto (its count is what matters)."""
