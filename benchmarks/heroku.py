"""Heroku from a thousand to 100k photos, media in a bucket: the slug and the dyno's memory, against Heroku's limits.

- slug: what `tar czf` makes of a fresh venv of requirements.txt alone (what
  Heroku installs: no torch), the project's tracked files, and, on the other
  rows, an index of each size (`benchmarks.synthetic_index`, 1280-d). Heroku's
  limit is 500 MB compressed. Thumbnails in the slug add about 40 KB a photo
  (200 KB for 12 MP photos), not counted here.
- memory: PSS of gunicorn's master and WEB_CONCURRENCY=2 workers, run by that
  venv with --preload as the Procfile runs it, LOOKALIKE_SEARCH=off and the
  media in a bucket (LOOKALIKE_MEDIA_URL: public https:// at every size, and
  presigned s3://, which loads boto3, at the largest), after serving 200 photo
  and gallery pages all over the collection. A Standard-1X dyno has 512 MB.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from benchmarks.measure import Row
from benchmarks.scale import pss_after_serving
from benchmarks.serving import ROOT, WORKERS, gunicorn
from benchmarks.synthetic_index import write_synthetic_index

SLUG_LIMIT_MB = 500
STANDARD_1X_MB = 512
# Media in a bucket: the presigned store needs credentials to sign with, never to reach AWS (no request is made).
_MEDIA = {
    "public https://": {"LOOKALIKE_MEDIA_URL": "https://media.example.com/lookalike/"},
    "presigned s3://": {"LOOKALIKE_MEDIA_URL": "s3://lookalike-media/lookalike/", "AWS_ACCESS_KEY_ID": "benchmark",
                        "AWS_SECRET_ACCESS_KEY": "benchmark", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("heroku")
    group.add_argument("--heroku-photos", default="1000,10000,100000",
                       help="photos in the indexes, comma-separated (default: %(default)s)")


def run(args: argparse.Namespace) -> Iterator[Row]:
    from tests.support.runtime_venv import fresh_runtime_venv

    sizes = sorted(int(size) for size in args.heroku_photos.split(","))
    with tempfile.TemporaryDirectory(prefix="lookalike-heroku-") as folder:
        folder = Path(folder)
        venv = fresh_runtime_venv(folder / "venv")
        limit = f"ours ≤ {SLUG_LIMIT_MB} MB"
        yield Row("slug: requirements.txt venv + code (index by URL)", _compressed_mb(folder / "code.tar.gz", venv, []),
                  SLUG_LIMIT_MB, "MB", limit, higher_is_better=False, note="tar czf; baseline: Heroku's limit")
        for photos in sizes:
            index = write_synthetic_index(folder / str(photos) / "index.pkl", photos, neighbours="random", clustered=True)
            slug = _compressed_mb(folder / f"{photos}.tar.gz", venv, [index])
            yield Row(f"slug: venv + code + a {photos:,}-photo index", slug, SLUG_LIMIT_MB, "MB", limit,
                      higher_is_better=False, note=f"index file {index.stat().st_size / 1e6:,.0f} MB, 1280-d embeddings")
            for label, media in _MEDIA.items():
                if label.startswith("presigned") and photos != sizes[-1]:
                    continue
                env = {"LOOKALIKE_INDEX": str(index), "LOOKALIKE_SEARCH": "off", **media}
                with gunicorn("app:create_app()", env, python=str(venv / "bin" / "python")) as (base, master):
                    pss_mb = pss_after_serving(base, master, photos) * 2**20 / 1e6
                yield Row(f"dyno memory (PSS), {photos:,} photos, media {label}", pss_mb, STANDARD_1X_MB, "MB",
                          f"ours ≤ {STANDARD_1X_MB} MB", higher_is_better=False,
                          note=f"master + {WORKERS} workers, search off; baseline: Standard-1X")


def _compressed_mb(archive: Path, venv: Path, data: list[Path]) -> float:
    """MB (10^6) of `tar czf` over the venv, the project's tracked files and `data`, as a slug is packed."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    code = [ROOT / name.decode() for name in tracked if name and (ROOT / name.decode()).is_file()]
    members = [venv, *code, *data]
    subprocess.run(["tar", "czf", str(archive), "--absolute-names", *map(str, members)], check=True)
    return archive.stat().st_size / 1e6
