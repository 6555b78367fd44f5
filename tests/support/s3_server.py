"""Real S3 endpoints on 127.0.0.1 for tests and benchmarks: moto's standalone server, and s3rver.

boto3 talks real HTTP to them (signing, multipart, errors and all); nothing inside
boto3 is stubbed. moto keeps every server's buckets in one store per process,
so each start empties it: a server started for one test sees nothing of an
earlier test's (run one at a time).

moto serves everything but does not check a presigned URL's expiry; s3rver
(Node, tests/s3rver/package.json, installed by `make test`) refuses an expired
one, so the expiry test runs against it. Neither checks SigV4 signatures.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.live_server import ROOT, free_port, stop_process

# moto accepts any credentials; these keep boto3 from looking for real ones.
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "lookalike-test",
    "AWS_SECRET_ACCESS_KEY": "lookalike-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3Endpoint:
    """A running local endpoint: its URL, and a way to stop it (to simulate an outage)."""

    url: str
    server: object
    credentials: dict[str, str] = field(default_factory=lambda: TEST_CREDENTIALS)

    def client(self):
        """A boto3 S3 client for this endpoint, path-style, with its credentials."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.credentials["AWS_SECRET_ACCESS_KEY"],
            region_name=self.credentials["AWS_DEFAULT_REGION"],
            config=Config(s3={"addressing_style": "path"}),
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def stop(self) -> None:
        """Stop answering: requests after this fail to connect."""
        self.server.stop()


@contextlib.contextmanager
def running_s3(monkeypatch=None) -> Iterator[S3Endpoint]:
    """Start moto's server on a free 127.0.0.1 port; yield the endpoint; stop it.

    With a pytest `monkeypatch`, the test credentials are also put in the
    environment, so code that builds its own boto3 client (as the product does,
    from the standard AWS variables) finds them.
    """
    from moto.server import ThreadedMotoServer

    if monkeypatch is not None:
        for name, value in TEST_CREDENTIALS.items():
            monkeypatch.setenv(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = S3Endpoint(url=f"http://127.0.0.1:{port}", server=server)
    urllib.request.urlopen(urllib.request.Request(f"{endpoint.url}/moto-api/reset", method="POST"), timeout=30).close()
    try:
        yield endpoint
    finally:
        with contextlib.suppress(Exception):  # already stopped by the test
            server.stop()


S3RVER = ROOT / "tests" / "s3rver" / "node_modules" / ".bin" / "s3rver"
S3RVER_CREDENTIALS = {  # the one account s3rver knows
    "AWS_ACCESS_KEY_ID": "S3RVER",
    "AWS_SECRET_ACCESS_KEY": "S3RVER",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_S3RVER_START_S = 60  # a readiness wait, not a speed check


class _Process:
    def __init__(self, process: subprocess.Popen):
        self.process = process

    def stop(self) -> None:
        stop_process(self.process)


@contextlib.contextmanager
def running_s3rver(folder: Path, monkeypatch=None) -> Iterator[S3Endpoint]:
    """Start s3rver on a free 127.0.0.1 port, keeping its buckets in `folder`; yield the endpoint; stop it.

    Skips the test when s3rver is not installed (`make test` installs it:
    npm ci --prefix tests/s3rver).
    """
    if not S3RVER.is_file() or shutil.which("node") is None:
        pytest.skip(f"s3rver is not installed at {S3RVER}: run `npm ci --prefix tests/s3rver` (make test does)")
    if monkeypatch is not None:
        for name, value in S3RVER_CREDENTIALS.items():
            monkeypatch.setenv(name, value)
    port = free_port()
    log = open(folder / "s3rver.log", "wb")
    process = subprocess.Popen(
        [str(S3RVER), "--directory", str(folder), "--address", "127.0.0.1", "--port", str(port), "--silent"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    server = _Process(process)
    try:
        _wait_for_port(port, process, folder / "s3rver.log")
        yield S3Endpoint(url=f"http://127.0.0.1:{port}", server=server, credentials=S3RVER_CREDENTIALS)
    finally:
        server.stop()
        log.close()


def _wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + _S3RVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"s3rver exited with status {process.returncode}:\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"s3rver did not listen on port {port} within {_S3RVER_START_S} s")
