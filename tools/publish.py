"""`python -m tools.publish INDEX --to s3://BUCKET/PREFIX`: put an index's media in object storage.

The web app then serves thumbnails and previews from the bucket
(LOOKALIKE_MEDIA_URL) instead of from a folder in its slug, and optionally
originals (LOOKALIKE_ORIGINALS_URL) and the index itself (LOOKALIKE_INDEX_URL).
Object names: `tools/media_objects.py`. Rerunning uploads only what is
not there yet; one object's failure never stops the others, and the exit
status says whether any failed.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from core.bucket import BucketError, BucketPlace, Listed, describe, listed_objects, s3_client
from core.index_file import IndexFileError, read_index
from core.location_data import DEFAULT_MODE
from precompute.command_line import (
    EXIT_ERROR, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, OneLineErrorParser, at_least, sigterm_as_interrupt,
)
from tools.bucket_sync import UNREACHABLE_IN_A_ROW, Destination, SyncReport, sync_objects
from tools.index_archive import INDEX_FOLDER, write_index_archive
from tools.media_objects import (ORIGINALS_FOLDER, MediaObject, default_photo_root, original_objects,
                                      thumbnail_objects)
from tools.publish_record import PublishRecord, record_path

_LISTED_FAILURES = 20  # failed or withheld objects printed one by one; past that, a count


class PublishError(Exception):
    """Nothing can be published (say, the originals' folder is missing); the message says why."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineErrorParser(
        prog="python -m tools.publish",
        description="Upload an index's thumbnails and previews (and optionally its originals and the index itself) "
        "to an S3 bucket, for LOOKALIKE_MEDIA_URL. Credentials come from the standard AWS variables and profiles.",
        epilog=f"Exit status: {EXIT_OK} everything is in the bucket, {EXIT_INCOMPLETE} some objects failed (listed; "
        f"rerun to retry them), {EXIT_ERROR} nothing published, {EXIT_USAGE} bad usage, {EXIT_INTERRUPTED} interrupted.",
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
    if args.photo_root and not args.originals:
        parser.error("--photo-root is where --originals come from; add --originals")
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
    try:
        with sigterm_as_interrupt():
            return _publish(args)
    except (IndexFileError, BucketError, PublishError) as err:
        print(f"error: {err}; nothing published", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as stop:
        print(f"\ninterrupted by {str(stop) or 'SIGINT'}: what was uploaded stays; rerun to finish", file=sys.stderr)
        return EXIT_INTERRUPTED


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
    record = PublishRecord(record_path(args.index), f"{client.meta.endpoint_url} {place.url()}")
    try:
        with tqdm(total=len(objects), unit="object", desc=f"Publishing to {place.url()}", file=sys.stderr) as bar:
            report = sync_objects(Destination(client, place, listed, record), objects, jobs=args.jobs,
                                  on_done=lambda: bar.update(1))
    finally:  # what went up before a failure or Ctrl-C need not be read again either
        _save(record)
    report.withheld += withheld
    archive_lines = _publish_archive(client, place, args.index, listed, report) if args.index_archive else []
    _print_summary(report, place, objects, listed, archive_lines, client.meta.endpoint_url.rstrip("/"),
                   bool(args.originals))
    return EXIT_INCOMPLETE if report.failed or report.not_tried else EXIT_OK


def _save(record: PublishRecord) -> None:
    try:
        record.save()
    except OSError as err:  # a read-only index folder: the next run hashes every file again, nothing worse
        print(f"note: cannot keep what was published in {record.path}: {err.strerror or err}", file=sys.stderr)


def _publish_archive(client, place: BucketPlace, index_path: Path, listed: dict[str, Listed], report: SyncReport) -> list[str]:
    """Upload the index archive unless it is there (its name holds its SHA-256); the lines that configure the app."""
    # Beside the index, whose disk holds one more copy of it more surely than a small /tmp does.
    with tempfile.TemporaryDirectory(prefix=".publish-", dir=index_path.parent) as folder:
        try:
            archive = write_index_archive(index_path, Path(folder))
        except OSError as err:
            report.failed.append((INDEX_FOLDER, f"cannot write the index archive: {err.strerror or err}"))
            return []
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
                   archive_lines: list[str], endpoint: str, originals: bool) -> None:
    failed = len(report.failed) + report.not_tried
    print(f"Published to {place.url()}: uploaded {len(report.uploaded)} ({report.uploaded_bytes / 2**20:.1f} MiB), "
          f"skipped {report.skipped} already there, failed {failed}.")
    if failed:
        print(f"Failed {failed} (rerun to retry them):")
        _print_some(report.failed)
        if report.not_tried:
            print(f"  {report.not_tried} not tried: the endpoint stopped answering "
                  f"({UNREACHABLE_IN_A_ROW} uploads in a row could not reach it)")
    if report.withheld:
        print(f"Withheld {len(report.withheld)}, never uploaded:")
        _print_some(report.withheld)
    published = {place.key(item.name) for item in objects}
    not_this_run = [place.key(INDEX_FOLDER)] + ([] if originals else [place.key(ORIGINALS_FOLDER)])
    others = [key for key in listed if key not in published and not key.startswith(tuple(not_this_run))]
    if others:
        print(f"Left in place: {len(others)} objects under {place.url()} that this index does not name "
              "(earlier photos; an app running an older index may still show them).")
    on_aws = endpoint.endswith(".amazonaws.com")
    print(f"LOOKALIKE_MEDIA_URL: the public (or presigned) URL of {place.url()}"
          + (f", on AWS https://{place.bucket}.s3.amazonaws.com/{place.prefix}" if on_aws else ""))
    if archive_lines:
        print("\n".join(archive_lines))
        print("The app fetches that archive with boto3 and its own AWS credentials (as publish did); it stays private "
              "unless a bucket policy makes PREFIX/index/ public, which would publish every path and embedding."
              + ("" if on_aws else f" Set AWS_ENDPOINT_URL_S3={endpoint} for the app too."))


def _print_some(named_reasons: list[tuple[str, str]]) -> None:
    """Each object with its reason, up to a screenful; past that, how many more."""
    for name, reason in named_reasons[:_LISTED_FAILURES]:
        print(f"  {name}: {reason}")
    if len(named_reasons) > _LISTED_FAILURES:
        print(f"  … and {len(named_reasons) - _LISTED_FAILURES} more")


if __name__ == "__main__":
    sys.exit(main())
