"""A real S3-compatible server for the object-storage tests: moto's ``moto_server``.

Installed from the lock's dev extra (``moto[s3]`` + Flask), started as a process on
a free loopback port. ``S3Server(auth=True)`` enforces IAM: the bucket, an
``admin`` user (everything) and a ``node`` user with exactly the policy
docs/operations.md gives a node are made during the first requests (moto lets
``INITIAL_NO_AUTH_ACTION_COUNT`` requests through unsigned), then every request
is checked against its user's policy. Missing under CI=true fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import free_port, missing

BUCKET = "livecore-media"
PREFIX = "shop1/"
REGION = "us-east-1"
#: The node's minimal policy, as docs/operations.md gives it (bucket and prefix filled
#: in). Its optional ``s3:ListBucket`` statement (AWS answers a missing key 403 without
#: it) is left out: moto does not evaluate its ``s3:prefix`` condition.
NODE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "s3:PutObject",
                "s3:GetObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
            ],
            "Resource": f"arn:aws:s3:::{BUCKET}/{PREFIX}*",
        }
    ],
}
ADMIN_POLICY = {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}  # fmt: skip
#: Unsigned requests the setup makes: bucket; per user: user, policy, key.
SETUP_REQUESTS = 1 + 2 * 3


def moto_server_path() -> str:
    found = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if found is None:
        missing("moto_server is not installed (the lock's dev extra: make .venv/.installed)")
    assert found is not None
    return found


@dataclass
class Keys:
    access_key: str
    secret_key: str = field(repr=False)


@dataclass
class S3Server:
    """One ``moto_server`` process (see the module doc)."""

    auth: bool = False
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    admin: Keys = field(default_factory=lambda: Keys("admin-key", "admin-secret"))
    node: Keys = field(default_factory=lambda: Keys("node-key", "node-secret"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log: Path) -> S3Server:
        env = dict(os.environ)
        if self.auth:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_REQUESTS)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [moto_server_path(), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, f"moto_server exited: {log.read_text()[-2000:]}"
            try:
                httpx.get(f"{self.url}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "moto_server did not answer in 30 s"
                time.sleep(0.1)
        self._setup()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def client(self, service: str, keys: Keys | None = None) -> Any:
        import boto3

        keys = keys or self.admin
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=keys.access_key,
                            aws_secret_access_key=keys.secret_key)  # fmt: skip

    def _setup(self) -> None:
        self.client("s3").create_bucket(Bucket=BUCKET)
        if not self.auth:
            return
        iam = self.client("iam")
        for name, policy in (("admin", ADMIN_POLICY), ("node", NODE_POLICY)):
            iam.create_user(UserName=name)
            iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy",
                                PolicyDocument=json.dumps(policy))  # fmt: skip
            key = iam.create_access_key(UserName=name)["AccessKey"]
            setattr(self, name, Keys(key["AccessKeyId"], key["SecretAccessKey"]))

    def node_args(self, secret_file: Path) -> list[str]:
        """``livecore serve`` flags for this server with the node's keys (secret in a file)."""
        secret_file.write_text(self.node.secret_key + "\n")
        return ["--s3-endpoint", self.url, "--s3-bucket", BUCKET, "--s3-region", REGION,
                "--s3-prefix", PREFIX, "--s3-access-key", self.node.access_key,
                "--s3-secret-file", str(secret_file)]  # fmt: skip
