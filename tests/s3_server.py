"""A real S3 endpoint on 127.0.0.1 for tests and benchmarks: moto's standalone server.

boto3 talks real HTTP to it (signing, multipart, errors and all); nothing inside
boto3 is stubbed. moto keeps every server's buckets in one store per process,
so each start empties it: a server started for one test sees nothing of an
earlier test's (run one at a time).
"""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from tests.live_server import free_port

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

    def client(self):
        """A boto3 S3 client for this endpoint, path-style, with the test credentials."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=TEST_CREDENTIALS["AWS_DEFAULT_REGION"],
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
