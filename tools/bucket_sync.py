"""Put objects in a bucket, in parallel, skipping those whose same bytes are already there.

"The same bytes" is decided from one listing of the prefix (see
`bucket.listed_objects`), not a request per object: same size and an ETag
equal to the bytes' MD5, which is what S3 and the S3-API stores answer for an
object put in one request, as every object here is. A file unchanged since
an earlier run hashed it is not even read (`publish_record.py`). Each upload sends its
Content-MD5, so the store refuses bytes damaged on the way. One object's
failure is recorded with its reason and never stops the others; but once
`UNREACHABLE_IN_A_ROW` uploads in a row could not reach the endpoint at all
(refused, dropped or unanswered), the rest are not tried (each would spend
its retries on a store that is down) and count as failed, for a rerun.

A store whose ETag is not the MD5 (AWS with SSE-KMS) makes every object look
changed, so each run uploads everything again.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from botocore.exceptions import ConnectionError as CannotConnect

from core.bucket import BucketPlace, Listed, describe
from core.served_type import DOWNLOAD_TYPE
from tools.media_objects import MediaObject, Withheld
from tools.publish_record import PublishRecord

UNREACHABLE_IN_A_ROW = 16


@dataclass
class SyncReport:
    """What happened to each object: names with their reasons where something went wrong."""

    uploaded: list[str] = field(default_factory=list)
    uploaded_bytes: int = 0
    skipped: int = 0  # the same bytes were already there
    failed: list[tuple[str, str]] = field(default_factory=list)  # might work on a rerun
    not_tried: int = 0  # after the endpoint stopped answering; failed too, for a rerun
    withheld: list[tuple[str, str]] = field(default_factory=list)  # never published, by design


@dataclass(frozen=True)
class _Outcome:
    name: str
    status: str  # uploaded, skipped, failed, not_tried or withheld
    reason: str = ""
    size: int = 0


@dataclass(frozen=True)
class Destination:
    """Where the objects go, what the listing found there, and what publish recorded putting there before."""

    client: Any
    place: BucketPlace
    listed: dict[str, Listed]
    record: PublishRecord | None = None


def sync_objects(
    destination: Destination,
    objects: Sequence[MediaObject],
    *,
    jobs: int = 8,
    on_done: Callable[[], None] = lambda: None,
) -> SyncReport:
    """Publish each object unless it is there already; `on_done` is called after each one (a progress bar)."""
    report = SyncReport()
    endpoint = _Reachability()
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="publish")
    try:
        futures = [pool.submit(_sync_one, destination, item, endpoint) for item in objects]
        for future in as_completed(futures):
            outcome = future.result()
            if outcome.status == "uploaded":
                report.uploaded.append(outcome.name)
                report.uploaded_bytes += outcome.size
            elif outcome.status == "skipped":
                report.skipped += 1
            elif outcome.status == "not_tried":
                report.not_tried += 1
            else:
                getattr(report, outcome.status).append((outcome.name, outcome.reason))
            on_done()
    except BaseException:  # Ctrl-C: say so at once; objects not started are dropped, those in flight finish
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return report


class _Reachability:
    """Counts uploads in a row that could not reach the endpoint; past UNREACHABLE_IN_A_ROW it is taken as down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_a_row = 0

    @property
    def down(self) -> bool:
        return self._in_a_row >= UNREACHABLE_IN_A_ROW

    def record(self, unreachable: bool) -> None:
        with self._lock:
            self._in_a_row = self._in_a_row + 1 if unreachable else 0


def _sync_one(destination: Destination, item: MediaObject, endpoint: _Reachability) -> _Outcome:
    if endpoint.down:
        return _Outcome(item.name, "not_tried")
    place, record = destination.place, destination.record
    key = place.key(item.name)
    there = destination.listed.get(key)
    try:
        source = item.source.stat()
        if there is not None and record is not None and record.published(key, source, item.strip_location) == there:
            return _Outcome(item.name, "skipped")  # unchanged since it was hashed, and still there: not read again
        data = item.read()
    except Withheld as why:
        return _Outcome(item.name, "withheld", str(why))
    except OSError as err:
        return _Outcome(item.name, "failed", f"cannot read {item.source}: {err.strerror or err}")
    md5 = hashlib.md5(data)
    published = Listed(len(data), md5.hexdigest())
    if there == published:
        status = "skipped"
    else:
        try:
            content_type = item.served_as(data)
            download = {"ContentDisposition": "attachment"} if content_type == DOWNLOAD_TYPE else {}
            destination.client.put_object(
                Bucket=place.bucket, Key=key, Body=data, ContentType=content_type, **download,
                CacheControl=item.cache_control, ContentMD5=base64.b64encode(md5.digest()).decode(),
            )
        except Exception as err:  # noqa: BLE001 - boto's and the network's errors: this object failed, the rest go on
            endpoint.record(unreachable=isinstance(err, (CannotConnect, ConnectionClosedError, ReadTimeoutError)))
            return _Outcome(item.name, "failed", describe(err, place.bucket))
        endpoint.record(unreachable=False)
        status = "uploaded"
    if record is not None:
        record.remember(key, source, item.strip_location, published)
    return _Outcome(item.name, status, size=len(data))
