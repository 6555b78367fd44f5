"""An index's thumbnails in a bucket, and the index alone without them: a dyno whose media is in object storage."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

from precompute.index_file import read_index


def put_thumbnails(client, bucket: str, prefix: str, index_path: Path) -> dict[str, bytes]:
    """Upload every thumbnail and preview of the index as `prefix + name` (the publish layout); return them by name."""
    folder = index_path.parent / read_index(index_path)["thumbnail_dir"]
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


def publish(index_path: Path, s3, destination: str, scratch: Path) -> None:
    """Publish the index's media to `destination` (s3://BUCKET/PREFIX) on the endpoint `s3`."""
    bucket, _, prefix = destination.removeprefix("s3://").partition("/")
    put_thumbnails(s3.client(), bucket, prefix.rstrip("/") + "/", index_path)
