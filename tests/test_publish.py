"""`python -m tools.publish` against a real local S3 endpoint (moto's server on 127.0.0.1, through boto3 over HTTP).

Every expected object with its Content-Type and Cache-Control; a rerun uploads
nothing; after an incremental precompute run only the new photos' objects go
up; an endpoint that goes down midway costs a non-zero exit and a list of
failures, and a rerun finishes the job; originals go up without their
location; the index archive goes up and the app fetches it back from s3://.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from app import create_app
from app.index_download import DownloadLimits, IndexDownloadError, fetch_index
from core.index_file import read_index, thumbnail_dir_for
from precompute.build import BuildOptions, build_index
from tests.support.s3_outage import outage_proxy
from tests.support.s3_server import TEST_CREDENTIALS, running_s3
from tests.support.tiny_index import PHOTOS, build_tiny_index, write_photo
from tools import publish
from tools.bucket_sync import UNREACHABLE_IN_A_ROW
from tools.media_objects import IMMUTABLE, ORIGINAL_CACHE
from tools.publish_record import record_path

PROJECT = Path(__file__).resolve().parent.parent
BUCKET = "lookalike-media"


@pytest.fixture
def s3(monkeypatch):
    """moto with one bucket; the test credentials in the environment; one attempt per request (no retry waits)."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(variable, raising=False)
    with running_s3(monkeypatch) as endpoint:
        endpoint.create_bucket(BUCKET)
        yield endpoint


def run_publish(capsys, *args: str) -> tuple[int, str, str]:
    """The command in this process: its exit status, stdout and stderr."""
    status = publish.main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def counts(out: str) -> tuple[int, int, int]:
    uploaded, skipped, failed = re.search(r"uploaded (\d+) .*skipped (\d+) already there, failed (\d+)", out).groups()
    return int(uploaded), int(skipped), int(failed)


def objects(endpoint, prefix: str = "") -> dict[str, dict]:
    listed = endpoint.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"]: item for page in listed for item in page.get("Contents", ())}


def thumbnail_names(index_path: Path) -> set[str]:
    return {entry["file"] for photo in read_index(index_path).photos for entry in photo["thumbnails"].values()}


def test_every_thumbnail_and_preview_is_published_with_its_type_and_caching(holidays_index, s3):
    command = [sys.executable, "-m", "tools.publish", holidays_index, "--to", f"s3://{BUCKET}/gallery",
               "--endpoint-url", s3.url]
    first = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    expected, folder = thumbnail_names(holidays_index), thumbnail_dir_for(holidays_index)
    assert expected == {file.name for file in folder.iterdir()}  # two of a kind per photo; identical photos share theirs
    assert set(objects(s3)) == {f"gallery/{name}" for name in expected}
    assert counts(first.stdout) == (len(expected), 0, 0)
    client = s3.client()
    for name in expected:
        head = client.head_object(Bucket=BUCKET, Key=f"gallery/{name}")
        assert (head["ContentType"], head["CacheControl"]) == ("image/jpeg", IMMUTABLE)
        assert head["ContentLength"] == (folder / name).stat().st_size
    sample = sorted(expected)[0]
    assert client.get_object(Bucket=BUCKET, Key=f"gallery/{sample}")["Body"].read() == (folder / sample).read_bytes()

    second = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert counts(second.stdout) == (0, len(expected), 0)
    assert "Traceback" not in first.stderr + second.stderr


@pytest.mark.slow
def test_after_adding_photos_only_theirs_are_uploaded(tmp_path, s3, capsys):
    index = build_tiny_index(tmp_path)
    target = ["--to", f"s3://{BUCKET}/site/", "--endpoint-url", s3.url, "--originals"]
    status, out, _ = run_publish(capsys, index, *target)
    assert status == 0 and counts(out) == (3 * len(PHOTOS), 0, 0)
    before = set(objects(s3))

    for name, colour in (("zeta.jpg", (90, 10, 160)), ("eta.jpg", (10, 160, 90))):
        write_photo(tmp_path / "photos" / name, 500, 400, colour)
    (tmp_path / "photos" / "alpha.jpg").unlink()
    report = build_index(tmp_path / "photos", index, BuildOptions(model="efficientnet-lite0", k=3, workers=0))
    assert (report.added, report.removed, report.embedded) == (2, 1, 2)

    status, out, _ = run_publish(capsys, index, *target)
    assert status == 0
    assert counts(out) == (6, 3 * (len(PHOTOS) - 1), 0)
    assert "Left in place: 3 objects" in out  # alpha's: an app still running the old index shows them
    added = set(objects(s3)) - before
    new_photos = [photo for photo in read_index(index).photos if photo["path"] in ("zeta.jpg", "eta.jpg")]
    assert added == {f"site/{entry['file']}" for photo in new_photos for entry in photo["thumbnails"].values()} | {
        "site/originals/zeta.jpg", "site/originals/eta.jpg"}


@pytest.mark.slow
def test_a_rerun_reads_only_the_files_changed_since_publish_hashed_them(tmp_path, s3, capsys):
    """The record beside the index spares a rerun reading every original; the listing still has the last word."""
    index = build_tiny_index(tmp_path)
    target = [index, "--to", f"s3://{BUCKET}/site/", "--endpoint-url", s3.url, "--originals"]
    assert run_publish(capsys, *target)[0] == 0
    assert record_path(index).is_file()

    # Other bytes, same size and time: only reading the file could tell, and the rule (precompute's) does not read it.
    alpha = tmp_path / "photos" / "alpha.jpg"
    before, data = alpha.stat(), bytearray(alpha.read_bytes())
    data[-100] ^= 0xFF
    alpha.write_bytes(bytes(data))
    os.utime(alpha, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert counts(run_publish(capsys, *target)[1]) == (0, 3 * len(PHOTOS), 0)

    s3.client().delete_object(Bucket=BUCKET, Key="site/originals/beta.jpg")  # gone from the store: the listing says so
    assert counts(run_publish(capsys, *target)[1]) == (1, 3 * len(PHOTOS) - 1, 0)

    record_path(index).write_text("{damaged")  # a damaged record counts as none: every file is read and hashed,
    assert counts(run_publish(capsys, *target)[1]) == (1, 3 * len(PHOTOS) - 1, 0)  # and alpha's new bytes go up
    assert s3.client().get_object(Bucket=BUCKET, Key="site/originals/alpha.jpg")["Body"].read() == bytes(data)
    assert counts(run_publish(capsys, *target)[1]) == (0, 3 * len(PHOTOS), 0)  # and the record is whole again


def test_an_endpoint_that_goes_down_midway_fails_what_is_left_and_a_rerun_finishes(tiny_index, s3, capsys):
    total = 3 * len(PHOTOS)  # two thumbnail kinds and the original of each photo
    with outage_proxy(s3.url, uploads_allowed=4) as endpoint:
        command = [tiny_index, "--to", f"s3://{BUCKET}/p", "--endpoint-url", endpoint.url, "--originals", "--jobs", "2"]
        status, out, err = run_publish(capsys, *command)
        assert status == publish.EXIT_INCOMPLETE
        assert counts(out) == (4, 0, total - 4)
        assert len(objects(s3)) == 4  # the store kept what it took before the outage
        failures = [line for line in out.split("(rerun to retry them):\n")[1].splitlines() if line.startswith("  ")]
        assert len(failures) == total - 4
        assert all(re.search(r"connect|closed|aborted|reset", line, re.I) for line in failures), failures
        assert "Traceback" not in out + err

        endpoint.restart()
        status, out, _ = run_publish(capsys, *command)
        assert status == 0
        assert counts(out) == (total - 4, 4, 0)
        assert len(objects(s3)) == total


def test_once_the_endpoint_is_down_the_rest_is_not_tried_and_a_rerun_finishes(holidays_index, s3, capsys):
    """Hundreds of objects left when the store goes away: a few fail trying, the others are not tried."""
    expected = len(thumbnail_names(holidays_index))
    with outage_proxy(s3.url, uploads_allowed=20) as endpoint:
        command = [holidays_index, "--to", f"s3://{BUCKET}/big", "--endpoint-url", endpoint.url, "--jobs", "4"]
        status, out, _ = run_publish(capsys, *command)
        assert status == publish.EXIT_INCOMPLETE and counts(out) == (20, 0, expected - 20)
        not_tried = int(re.search(r"^  (\d+) not tried: the endpoint stopped answering", out, re.M).group(1))
        # Those that tried: the run of failures that took the endpoint for down, each run restarted at most
        # once by one of the 4 uploads in flight at the outage succeeding, and those in flight when it was.
        assert expected - 20 - not_tried <= (UNREACHABLE_IN_A_ROW + 1) * 4
        assert len(objects(s3)) == 20

        endpoint.restart()
        status, out, _ = run_publish(capsys, *command)
        assert status == 0 and counts(out) == (expected - 20, 20, 0)
        assert len(objects(s3)) == expected


@pytest.mark.slow
def test_sigterm_midway_stops_with_one_line_and_a_rerun_finishes(tiny_index, s3):
    total = 2 * len(PHOTOS)
    with outage_proxy(s3.url, uploads_allowed=3, hang=True) as endpoint:
        command = [sys.executable, "-m", "tools.publish", str(tiny_index), "--to", f"s3://{BUCKET}/p",
                   "--endpoint-url", endpoint.url, "--jobs", "1"]
        run = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert endpoint.reached.wait(timeout=300)  # the fourth upload is in flight, held unanswered
            run.send_signal(signal.SIGTERM)
            said = next(line for line in iter(run.stderr.readline, "") if "interrupted" in line)  # before the release
            assert said == "interrupted by SIGTERM: what was uploaded stays; rerun to finish\n"
        finally:
            endpoint.release.set()  # the upload in flight is dropped; then the command exits
            out, err = run.communicate(timeout=300)
        assert run.returncode == publish.EXIT_INTERRUPTED and "Traceback" not in err and not out
        assert len(objects(s3)) == 3

        endpoint.restart()
        rerun = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0 and counts(rerun.stdout) == (total - 3, 3, 0)


def _with_place(path: Path) -> bytes:
    """A JPEG whose EXIF says where it was taken, and which camera took it."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.IFD.GPSInfo] = {1: "N", 2: (52.0, 22.0, 31.5), 3: "E", 4: (4.0, 53.0, 12.25)}
    write_photo(path, 400, 300, (120, 80, 40))
    with Image.open(path) as image:
        image.save(path, exif=exif, quality=90)
    return path.read_bytes()


def test_originals_are_published_without_their_location_unless_as_is(tmp_path, s3, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    original = _with_place(photos / "placed.jpg")
    index = tmp_path / "index.pkl"
    build_index(photos, index, BuildOptions(model="efficientnet-lite0", k=1, workers=0))

    assert run_publish(capsys, index, "--to", f"s3://{BUCKET}/stripped", "--endpoint-url", s3.url, "--originals")[0] == 0
    assert run_publish(capsys, index, "--to", f"s3://{BUCKET}/as-is", "--endpoint-url", s3.url, "--originals", "as-is")[0] == 0
    client = s3.client()
    stripped = client.get_object(Bucket=BUCKET, Key="stripped/originals/placed.jpg")
    assert (stripped["ContentType"], stripped["CacheControl"]) == ("image/jpeg", ORIGINAL_CACHE)
    data = stripped["Body"].read()
    exif = Image.open(io.BytesIO(data)).getexif()
    assert ExifTags.IFD.GPSInfo not in exif and exif[ExifTags.Base.Make] == "TestCam"
    assert ExifTags.IFD.GPSInfo in Image.open(io.BytesIO(original)).getexif()
    assert data[data.index(b"\xff\xda"):] == original[original.index(b"\xff\xda"):]  # pixels copied, not re-encoded
    assert client.get_object(Bucket=BUCKET, Key="as-is/originals/placed.jpg")["Body"].read() == original


def test_an_originals_type_comes_from_its_bytes_never_its_name(tmp_path, s3, capsys):
    """As the app serves originals: a JPEG named `.png` is stored as `image/jpeg`, so a name can never make a page."""
    photos = tmp_path / "photos"
    photos.mkdir()
    write_photo(photos / "disguised.png", 320, 240, (30, 90, 150))
    with Image.open(photos / "disguised.png") as image:
        assert image.format == "PNG"
        image.convert("RGB").save(photos / "disguised.png", format="JPEG")
    index = tmp_path / "index.pkl"
    build_index(photos, index, BuildOptions(model="efficientnet-lite0", k=1, workers=0))
    assert run_publish(capsys, index, "--to", f"s3://{BUCKET}/site", "--endpoint-url", s3.url, "--originals", "as-is")[0] == 0
    head = s3.client().head_object(Bucket=BUCKET, Key="site/originals/disguised.png")
    assert head["ContentType"] == "image/jpeg" and "ContentDisposition" not in head


def test_an_original_swapped_for_a_link_out_of_the_folder_or_changed_is_withheld(tmp_path, s3, capsys):
    """The web app's rule: inside the photo folder, as opened, and still the file indexed; else withheld, with why."""
    index = build_tiny_index(tmp_path)
    photos = tmp_path / "photos"
    notes, elsewhere = tmp_path / "notes.txt", tmp_path / "someone-else.jpg"
    notes.write_text("my private notes, not a photo\n")
    write_photo(elsewhere, 640, 480, (200, 40, 40))
    (photos / "alpha.jpg").unlink()
    (photos / "alpha.jpg").symlink_to(notes)
    (photos / "beta.jpg").unlink()
    (photos / "beta.jpg").symlink_to(elsewhere)
    with open(photos / "epsilon.jpg", "ab") as edited:  # edited after indexing: not the photo the index describes
        edited.write(b"\0")
    for mode in ("as-is", "stripped"):
        status, out, _ = run_publish(capsys, index, "--to", f"s3://{BUCKET}/{mode}/", "--endpoint-url", s3.url,
                                     "--originals", mode)
        assert status == 0, out
        assert set(objects(s3, f"{mode}/originals/")) == {f"{mode}/originals/café.jpg", f"{mode}/originals/delta.png"}
        assert "Withheld 3, never uploaded:" in out
        assert f"originals/alpha.jpg: it leads out of {photos}" in out and f"originals/beta.jpg: it leads out of" in out
        assert "originals/epsilon.jpg: it changed since it was indexed" in out
    for item in objects(s3).values():
        assert b"private notes" not in s3.client().get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()


@pytest.mark.slow
def test_the_index_archive_is_published_privately_and_the_app_fetches_it_from_s3(tiny_index, s3, capsys, tmp_path, monkeypatch):
    status, out, _ = run_publish(capsys, tiny_index, "--to", f"s3://{BUCKET}/site", "--endpoint-url", s3.url, "--index-archive")
    assert status == 0
    url = re.search(r"^LOOKALIKE_INDEX_URL=(s3://\S+)$", out, re.M).group(1)
    sha256 = re.search(r"^LOOKALIKE_INDEX_SHA256=([0-9a-f]{64})$", out, re.M).group(1)
    assert re.fullmatch(rf"s3://{BUCKET}/site/index/index-{sha256[:16]}\.tar\.gz", url)
    assert counts(out) == (2 * len(PHOTOS) + 1, 0, 0)
    assert counts(run_publish(capsys, tiny_index, "--to", f"s3://{BUCKET}/site", "--endpoint-url", s3.url,
                              "--index-archive")[1]) == (0, 2 * len(PHOTOS) + 1, 0)  # the same archive, not again

    fetched = tmp_path / "data" / "index.pkl"
    for variable, value in {"AWS_ENDPOINT_URL_S3": s3.url, "LOOKALIKE_INDEX_URL": url, "LOOKALIKE_INDEX_SHA256": sha256,
                            "LOOKALIKE_INDEX": str(fetched)}.items():
        monkeypatch.setenv(variable, value)  # AWS_ENDPOINT_URL_S3: how the app finds a store other than AWS
    assert create_app().test_client().get("/healthz").json["photos"] == len(PHOTOS)
    assert read_index(fetched).photos == read_index(tiny_index).photos
    assert thumbnail_dir_for(fetched).is_dir()
    monkeypatch.delenv("LOOKALIKE_INDEX_SHA256")
    with pytest.raises(IndexDownloadError, match="SHA-256"):
        fetch_index(url, tmp_path / "other" / "index.pkl", DownloadLimits(sha256="0" * 64))
    with pytest.raises(IndexDownloadError, match="must look like s3://BUCKET/KEY"):
        fetch_index(f"s3://{BUCKET}", tmp_path / "other" / "index.pkl")
    with pytest.raises(IndexDownloadError, match="NoSuchKey"):
        fetch_index(f"s3://{BUCKET}/site/index/missing.tar.gz", tmp_path / "other" / "index.pkl")
    with pytest.raises(IndexDownloadError, match="LOOKALIKE_INDEX_MAX_MB"):
        fetch_index(url, tmp_path / "other" / "index.pkl", DownloadLimits(download_mb=1e-4))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for variable in TEST_CREDENTIALS:
        monkeypatch.delenv(variable)
    with pytest.raises(IndexDownloadError, match="no AWS credentials"):
        fetch_index(url, tmp_path / "other" / "index.pkl")


def test_the_documented_bucket_policy_makes_media_public_and_keeps_the_index_private(tiny_index, s3, capsys, monkeypatch):
    """The policy in docs/publish-and-export.md: anyone may read thumbnails, previews and originals; the index needs credentials."""
    prefix = "site/"
    status, out, _ = run_publish(capsys, tiny_index, "--to", f"s3://{BUCKET}/{prefix}", "--endpoint-url", s3.url,
                                 "--originals", "--index-archive")
    assert status == 0
    policy_doc = (PROJECT / "docs" / "publish-and-export.md").read_text()
    policy = json.loads(re.search(r"```json\n(\{.*?\})\n```", policy_doc, re.S).group(1).replace("BUCKET", BUCKET)
                        .replace("PREFIX/", prefix))
    s3.client().put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))

    def unsigned_status(key: str) -> int:
        try:
            with urllib.request.urlopen(f"{s3.url}/{BUCKET}/{urllib.request.quote(key)}", timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code

    keys = objects(s3)
    archive = next(key for key in keys if key.startswith(f"{prefix}index/"))
    assert {key: unsigned_status(key) for key in keys if key != archive} == {key: 200 for key in keys if key != archive}
    assert unsigned_status(archive) == 403

    # The app's originals-by-URL, set to the media URL + originals/, sends each photo (café.jpg too) to its object.
    monkeypatch.setenv("LOOKALIKE_ORIGINALS_URL", f"{s3.url}/{BUCKET}/{prefix}originals/")
    client, photos = create_app(tiny_index).test_client(), read_index(tiny_index).photos
    for photo in photos:
        location = client.get(f"/photos/{photo['id']}/original").headers["Location"]
        with urllib.request.urlopen(location, timeout=30) as response:
            assert response.read() == (tiny_index.parent / "photos" / photo["path"]).read_bytes()  # no place to strip


@pytest.mark.parametrize("to, message", [
    ("http://bucket/prefix", "must look like s3://BUCKET/PREFIX"),
    ("s3://", "must look like s3://BUCKET/PREFIX"),
    ("s3://Not_A_Bucket/x", "is not a bucket name"),
    ("s3://bucket/a/../b", "no '.' or '..' names"),
    ("s3://bucket/with space", "needs no escaping"),
])
def test_a_bad_destination_is_one_line_and_exit_2(tiny_index, capsys, to, message):
    with pytest.raises(SystemExit) as stop:
        publish.main([str(tiny_index), "--to", to])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_photo_root_without_originals_is_a_usage_error(tiny_index, capsys):
    with pytest.raises(SystemExit) as stop:
        publish.main([str(tiny_index), "--to", "s3://bucket/x", "--photo-root", "."])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "add --originals" in err and len(err.strip().splitlines()) == 1


def test_bad_input_gets_one_line_and_exit_1(tiny_index, tmp_path, s3, capsys, monkeypatch):
    def fails(*args, says: str) -> None:
        status, out, err = run_publish(capsys, *args)
        assert status == publish.EXIT_ERROR and says in err and "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith("error: ") and len(err.strip().splitlines()) == 1 and not out

    to = ["--to", f"s3://{BUCKET}/x", "--endpoint-url", s3.url]
    fails(tmp_path / "missing.pkl", *to, says="index file not found")
    (tmp_path / "foreign.pkl").write_bytes(b"not an index")
    fails(tmp_path / "foreign.pkl", *to, says="foreign.pkl")
    fails(tiny_index, "--to", "s3://no-such-bucket/x", "--endpoint-url", s3.url, says="'no-such-bucket' does not exist")
    fails(tiny_index, *to, "--originals", "--photo-root", tmp_path / "nowhere", says="name it with --photo-root")
    with monkeypatch.context() as without:
        for variable in TEST_CREDENTIALS:
            without.delenv(variable)
        without.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        without.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        without.setenv("AWS_EC2_METADATA_DISABLED", "true")
        fails(tiny_index, *to, says="no AWS credentials")
        without.setenv("AWS_PROFILE", "nobody")
        fails(tiny_index, *to, says="nobody")
    s3.stop()
    fails(tiny_index, *to, says=f"cannot connect to {s3.url}")
