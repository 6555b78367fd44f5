"""An index's thumbnails in a bucket, and the index alone without them: a dyno whose media is in object storage."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from core.index_file import read_index
from tests.support.live_server import ROOT


def put_thumbnails(client, bucket: str, prefix: str, index_path: Path) -> dict[str, bytes]:
    """Upload every thumbnail and preview of the index as `prefix + name` (the publish layout); return them by name."""
    folder = index_path.parent / read_index(index_path).thumbnail_dir
    files = {path.name: path.read_bytes() for path in sorted(folder.iterdir())}
    for name, data in files.items():
        client.put_object(Bucket=bucket, Key=prefix + name, Body=data, ContentType="image/jpeg")
    return files


def index_alone(index_path: Path, folder: Path) -> Path:
    """A copy of the index file in `folder`, with no thumbnail folder beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(index_path, folder / index_path.name))


def image_sources(page: str) -> list[str]:
    """The src of every <img> in a page, unescaped as a browser reads them."""
    return [html.unescape(source) for source in re.findall(r'<img[^>]* src="([^"]+)"', page)]


def publish(index_path: Path, s3, destination: str, *options: str) -> dict[str, str]:
    """`python -m tools.publish INDEX --to DESTINATION --endpoint-url URL [options]`, run as a user runs it,
    against the endpoint `s3`; the settings it prints (LOOKALIKE_INDEX_URL=…), by name."""
    command = [sys.executable, "-m", "tools.publish", str(index_path), "--to", destination, "--endpoint-url", s3.url]
    result = subprocess.run([*command, *options], cwd=ROOT, env={**os.environ, **s3.credentials}, capture_output=True,
                            text=True)
    assert result.returncode == 0, f"publish failed:\n{result.stdout}\n{result.stderr}"
    return dict(line.split("=", 1) for line in result.stdout.split() if line.startswith("LOOKALIKE_") and "=" in line)


def fetch(url: str) -> tuple[int, bytes]:
    """GET `url`: its status and body, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def make_public(client, bucket: str) -> None:
    """Let anyone read the bucket's objects (a bucket policy, as for a public gallery's media)."""
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
