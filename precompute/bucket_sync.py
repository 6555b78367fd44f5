"""Put objects in a bucket, in parallel, skipping those whose same bytes are already there.

"The same bytes" is decided from one listing of the prefix (see
`bucket.listed_objects`), not a request per object: same size and an ETag
equal to the bytes' MD5, which is what S3 and the S3-API stores answer for an
object put in one request, as every object here is. Each upload sends its
Content-MD5, so the store refuses bytes damaged on the way. One object's
failure is recorded with its reason and never stops the others.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from precompute.bucket import BucketPlace, Listed, describe
from precompute.media_objects import MediaObject, Withheld


@dataclass
class SyncReport:
    """What happened to each object: names with their reasons where something went wrong."""

    uploaded: list[str] = field(default_factory=list)
    uploaded_bytes: int = 0
    skipped: int = 0  # the same bytes were already there
    failed: list[tuple[str, str]] = field(default_factory=list)  # might work on a rerun
    withheld: list[tuple[str, str]] = field(default_factory=list)  # never published, by design


@dataclass(frozen=True)
class _Outcome:
    name: str
    status: str  # uploaded, skipped, failed or withheld
    reason: str = ""
    size: int = 0


def sync_objects(
    client: Any,
    place: BucketPlace,
    objects: Sequence[MediaObject],
    listed: dict[str, Listed],
    *,
    jobs: int = 8,
    on_done: Callable[[], None] = lambda: None,
) -> SyncReport:
    """Publish each object unless it is there already; `on_done` is called after each one (a progress bar)."""
    report = SyncReport()
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="publish") as pool:
        futures = [pool.submit(_sync_one, client, place, item, listed) for item in objects]
        try:
            for future in as_completed(futures):
                outcome = future.result()
                if outcome.status == "uploaded":
                    report.uploaded.append(outcome.name)
                    report.uploaded_bytes += outcome.size
                elif outcome.status == "skipped":
                    report.skipped += 1
                else:
                    getattr(report, outcome.status).append((outcome.name, outcome.reason))
                on_done()
        except BaseException:  # Ctrl-C: objects not started are dropped, those in flight finish
            for future in futures:
                future.cancel()
            raise
    return report


def _sync_one(client: Any, place: BucketPlace, item: MediaObject, listed: dict[str, Listed]) -> _Outcome:
    try:
        data = item.read()
    except Withheld as why:
        return _Outcome(item.name, "withheld", str(why))
    except OSError as err:
        return _Outcome(item.name, "failed", f"cannot read {item.source}: {err.strerror or err}")
    md5 = hashlib.md5(data)
    there = listed.get(place.key(item.name))
    if there is not None and there.size == len(data) and there.etag == md5.hexdigest():
        return _Outcome(item.name, "skipped")
    try:
        client.put_object(
            Bucket=place.bucket, Key=place.key(item.name), Body=data, ContentType=item.content_type,
            CacheControl=item.cache_control, ContentMD5=base64.b64encode(md5.digest()).decode(),
        )
    except Exception as err:  # noqa: BLE001 - boto's and the network's errors: this object failed, the rest go on
        return _Outcome(item.name, "failed", describe(err, place.bucket))
    return _Outcome(item.name, "uploaded", size=len(data))
