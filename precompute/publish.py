"""`python -m precompute.publish INDEX --to s3://BUCKET/PREFIX`: put an index's media in object storage.

The web app then serves thumbnails and previews from the bucket
(LOOKALIKE_MEDIA_URL) instead of from a folder in its slug, and optionally
originals (LOOKALIKE_ORIGINALS_URL) and the index itself (LOOKALIKE_INDEX_URL).
Object names: `precompute/media_objects.py`. Rerunning uploads only what is
not there yet; one object's failure never stops the others, and the exit
status says whether any failed.
"""

from __future__ import annotations

import argparse
import io
import signal
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from precompute.bucket import BucketError, BucketPlace, Listed, describe, listed_objects, s3_client
from precompute.bucket_sync import SyncReport, sync_objects
from precompute.command_line import OneLineErrorParser, at_least, raise_interrupt
from precompute.index_archive import INDEX_FOLDER, write_index_archive
from precompute.index_file import IndexFileError, read_index
from precompute.location_data import DEFAULT_MODE
from precompute.media_objects import MediaObject, default_photo_root, original_objects, thumbnail_objects

EXIT_OK = 0
EXIT_ERROR = 1  # nothing was published: the index, the bucket or the credentials are not usable
EXIT_SOME_FAILED = 3  # some objects failed (each listed); a rerun retries just those
EXIT_INTERRUPTED = 130
_LISTED_FAILURES = 20  # failures printed one by one; past that, a count


class PublishError(Exception):
    """Nothing can be published (say, the originals' folder is missing); the message says why."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineErrorParser(
        prog="python -m precompute.publish",
        description="Upload an index's thumbnails and previews (and optionally its originals and the index itself) "
        "to an S3 bucket, for LOOKALIKE_MEDIA_URL. Credentials come from the standard AWS variables and profiles.",
        epilog=f"Exit status: {EXIT_OK} everything is in the bucket, {EXIT_SOME_FAILED} some objects failed (listed; "
        f"rerun to retry them), {EXIT_ERROR} nothing published, 2 bad usage, {EXIT_INTERRUPTED} interrupted.",
    )
    parser.add_argument("index", type=Path, help="the index file written by `python -m precompute`")
    parser.add_argument("--to", required=True, metavar="s3://BUCKET/PREFIX", help="where the objects go")
    parser.add_argument("--endpoint-url", metavar="URL",
                        help="an S3-API store other than AWS (R2, B2, MinIO); AWS_ENDPOINT_URL_S3 works too")
    parser.add_argument("--originals", nargs="?", const=DEFAULT_MODE, choices=("stripped", "as-is"),
                        help="also upload the originals under PREFIX/originals/: `stripped` (the default) without "
                        "their location data, as the app serves them, or `as-is`")
    parser.add_argument("--photo-root", type=Path, metavar="FOLDER",
                        help="where the originals are, if not where the index recorded them")
    parser.add_argument("--index-archive", action="store_true",
                        help="also upload the index (without thumbnails) under PREFIX/index/ and print the "
                        "LOOKALIKE_INDEX_URL and LOOKALIKE_INDEX_SHA256 to configure")
    parser.add_argument("--jobs", type=at_least(1, 64), default=8, help="uploads at once (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        args.place = BucketPlace.parse(args.to)
    except BucketError as err:
        parser.error(str(err))
    return args


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # names that are not valid UTF-8 print with escapes
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    args = parse_args(argv)
    previous_handler = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        return _publish(args)
    except (IndexFileError, BucketError, PublishError) as err:
        print(f"error: {err}; nothing published", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as stop:
        print(f"\ninterrupted by {str(stop) or 'SIGINT'}: what was uploaded stays; rerun to finish", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def _publish(args: argparse.Namespace) -> int:
    index = read_index(args.index)
    objects = thumbnail_objects(index, args.index)
    withheld: list[tuple[str, str]] = []
    if args.originals:
        photo_root = args.photo_root or default_photo_root(index, args.index)
        if not photo_root.is_dir():
            raise PublishError(f"the originals' folder {photo_root} is not there; name it with --photo-root")
        originals, withheld = original_objects(index, photo_root, strip_location=args.originals == "stripped")
        objects += originals
    place: BucketPlace = args.place
    client = s3_client(args.endpoint_url, connections=args.jobs)
    listed = listed_objects(client, place)
    with tqdm(total=len(objects), unit="object", desc=f"Publishing to {place.url()}", file=sys.stderr) as bar:
        report = sync_objects(client, place, objects, listed, jobs=args.jobs, on_done=lambda: bar.update(1))
    report.withheld += withheld
    archive_lines = _publish_archive(client, place, args.index, listed, report) if args.index_archive else []
    _print_summary(report, place, objects, listed, archive_lines, args.endpoint_url)
    return EXIT_SOME_FAILED if report.failed else EXIT_OK


def _publish_archive(client, place: BucketPlace, index_path: Path, listed: dict[str, Listed], report: SyncReport) -> list[str]:
    """Upload the index archive unless it is there (its name holds its SHA-256); the lines that configure the app."""
    with tempfile.TemporaryDirectory(prefix="lookalike-publish-") as folder:
        archive = write_index_archive(index_path, Path(folder))
        there = listed.get(place.key(archive.name))
        size = archive.path.stat().st_size
        if there is not None and there.size == size:
            report.skipped += 1
        else:
            try:  # a file, in parts if large: the index can be hundreds of MB
                client.upload_file(str(archive.path), place.bucket, place.key(archive.name), ExtraArgs={
                    "ContentType": "application/gzip", "CacheControl": "private, max-age=31536000, immutable"})
            except Exception as err:  # noqa: BLE001 - boto's and the network's errors, reported like any object's
                report.failed.append((archive.name, describe(err, place.bucket)))
                return []
            report.uploaded.append(archive.name)
            report.uploaded_bytes += size
    return [f"LOOKALIKE_INDEX_URL={place.url(archive.name)}", f"LOOKALIKE_INDEX_SHA256={archive.sha256}"]


def _print_summary(report: SyncReport, place: BucketPlace, objects: list[MediaObject], listed: dict[str, Listed],
                   archive_lines: list[str], endpoint_url: str | None) -> None:
    print(f"Published to {place.url()}: uploaded {len(report.uploaded)} ({report.uploaded_bytes / 2**20:.1f} MiB), "
          f"skipped {report.skipped} already there, failed {len(report.failed)}.")
    if report.failed:
        print(f"Failed {len(report.failed)} (rerun to retry them):")
        for name, reason in report.failed[:_LISTED_FAILURES]:
            print(f"  {name}: {reason}")
        if len(report.failed) > _LISTED_FAILURES:
            print(f"  … and {len(report.failed) - _LISTED_FAILURES} more")
    if report.withheld:
        print(f"Withheld {len(report.withheld)}, never uploaded:")
        for name, reason in report.withheld:
            print(f"  {name}: {reason}")
    published = {place.key(item.name) for item in objects}
    others = [key for key in listed if key not in published and not key.startswith(place.key(INDEX_FOLDER))]
    if others:
        print(f"Left in place: {len(others)} objects under {place.url()} that this index does not name "
              "(earlier photos; an app running an older index may still show them).")
    on_aws = f"https://{place.bucket}.s3.amazonaws.com/{place.prefix}"
    print(f"LOOKALIKE_MEDIA_URL: the public (or presigned) URL of {place.url()}" + ("" if endpoint_url else f", on AWS {on_aws}"))
    if archive_lines:
        print("\n".join(archive_lines))
        print("The app fetches that archive with boto3 and its own AWS credentials (as publish did); it stays private "
              "unless a bucket policy makes PREFIX/index/ public, which would publish every path and embedding."
              + (f" Set AWS_ENDPOINT_URL_S3={endpoint_url} for the app too." if endpoint_url else ""))


if __name__ == "__main__":
    sys.exit(main())
