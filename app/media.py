"""Thumbnails and previews served from object storage (LOOKALIKE_MEDIA_URL) instead of by the app.

`python -m tools.publish INDEX --to s3://BUCKET/PREFIX` uploads every
thumbnail and preview as `PREFIX/<its file name>` (the content-hash names of
the index's thumbnail folder). Pages then point each <img> at the store, and
the dyno needs no thumbnail folder at all. Two modes:

- public, `LOOKALIKE_MEDIA_URL=https://BUCKET.s3.amazonaws.com/PREFIX/` (or a
  CDN, R2's public URL, path-style or virtual-host, whichever the store
  serves): a file's URL is that URL plus its name; anyone who has a URL can
  fetch it, with no sign-in;
- presigned, `LOOKALIKE_MEDIA_URL=s3://BUCKET/PREFIX/`: the bucket stays
  private and each URL is a presigned GET made by boto3 on this machine (no
  network call), expiring after LOOKALIKE_MEDIA_URL_LIFETIME_S. The endpoint
  comes from the standard AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (R2, B2,
  MinIO), the credentials from the standard AWS variables or profile.

LOOKALIKE_ORIGINALS_URL takes the same two forms for the originals (publish
--originals puts them under `PREFIX/originals/<relative path>`).

Presigned URLs are signed as of the start of the current window, a quarter of
the lifetime long, so a page rendered twice in one window has the same URLs
(kept pages and cards stay valid, the browser's cache of images works), and
every URL served has at least three quarters of its lifetime left.
"""

from __future__ import annotations

import contextvars
import datetime
import functools
import os
import time
from collections.abc import Callable
from urllib.parse import quote, urlsplit

from app.links import loopback_host
from core.bucket import BucketError, BucketPlace

DEFAULT_LIFETIME_S = 3600
MIN_LIFETIME_S = 4  # a window of one second: for tests
MAX_LIFETIME_S = 7 * 24 * 3600  # the longest SigV4 allows
WINDOWS_PER_LIFETIME = 4
_SIGNER = "lookalike-windowed-s3v4"  # our name for botocore's S3 SigV4 with the signing time pinned to the window


class MediaSettingError(ValueError):
    """A presigned store has no AWS credentials to sign with; the message says what to set."""


class PublicMedia:
    """Files at a public base URL: a file's URL is the base plus its name, the same for ever."""

    public = True

    def __init__(self, base: str):
        self.base = base if base.endswith("/") else base + "/"
        parts = urlsplit(self.base)
        self.origin = f"{parts.scheme}://{parts.netloc}"

    def url(self, name: str) -> str:
        return self.base + quote(name.encode("utf-8", "surrogateescape"))

    def window(self) -> int:
        """URLs never change: one window for ever."""
        return 0


class PresignedMedia:
    """Files in a private bucket, each URL a presigned GET signed as of the current window's start."""

    public = False

    def __init__(self, bucket: str, prefix: str, lifetime_s: int, clock: Callable[[], float] = time.time):
        self.bucket, self.prefix, self.lifetime_s = bucket, prefix, lifetime_s
        self.window_s = lifetime_s // WINDOWS_PER_LIFETIME
        self._clock = clock
        self._client = _presigning_client(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))
        parts = urlsplit(self.url("probe"))
        self.origin = f"{parts.scheme}://{parts.netloc}"

    def window(self) -> int:
        """The number of the current signing window: URLs made within one window are identical."""
        return int(self._clock() // self.window_s)

    def url(self, name: str) -> str:
        signed_at = datetime.datetime.fromtimestamp(self.window() * self.window_s, datetime.timezone.utc)
        key = self.prefix + name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")  # S3 keys are UTF-8
        token = _SIGNING_TIME.set(signed_at)
        try:
            return self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.lifetime_s
            )
        finally:
            _SIGNING_TIME.reset(token)


Media = PublicMedia | PresignedMedia


def checked_store_url(text: str) -> str:
    """A LOOKALIKE_MEDIA_URL or LOOKALIKE_ORIGINALS_URL as it is; ValueError if it names no store (app.settings)."""
    parts = urlsplit(text)
    if parts.query or parts.fragment:
        raise ValueError(f"must not have a query or fragment: {text!r}")
    if parts.scheme == "s3":
        try:
            BucketPlace.parse(text, what="the URL")
        except BucketError as err:
            raise ValueError(f"names no valid bucket and prefix: {err}") from None
        return text
    if parts.scheme == "https" and parts.hostname or parts.scheme == "http" and loopback_host(parts.hostname):
        return text
    raise ValueError(
        f"must be https://… (a public bucket or CDN) or s3://BUCKET/PREFIX/ (presigned URLs), "
        f"not {text!r}; plain http:// only from this machine"
    )


def configured_media(url: str | None, lifetime_s: int = DEFAULT_LIFETIME_S) -> Media | None:
    """The store a checked `url` names (presigned URLs living `lifetime_s`), or None without one."""
    if url is None:
        return None
    if url.startswith("s3://"):
        place = BucketPlace.parse(url, what="the URL")  # checked already (checked_store_url)
        return PresignedMedia(place.bucket, place.prefix, lifetime_s)
    return PublicMedia(url)


_SIGNING_TIME: contextvars.ContextVar[datetime.datetime] = contextvars.ContextVar("lookalike_signing_time")


@functools.lru_cache(maxsize=1)  # one client for the thumbnails' and the originals' stores, while the AWS settings stay
def _presigning_client(aws_environment: tuple[tuple[str, str], ...]):
    """An S3 client that presigns as of `_SIGNING_TIME` and never reaches the network for credentials.

    Instance and container metadata (network calls) are dropped from the
    credential chain: environment variables, the shared files and profiles remain.
    """
    import boto3
    import botocore.auth
    import botocore.session
    from botocore.config import Config

    botocore.auth.AUTH_TYPE_MAPS.setdefault(_SIGNER, botocore.auth.S3SigV4Auth)
    botocore.auth.AUTH_TYPE_MAPS.setdefault(_SIGNER + "-query", _windowed_query_auth(botocore.auth))
    core = botocore.session.get_session()
    resolver = core.get_component("credential_provider")
    for provider in ("container-role", "iam-role"):
        resolver.remove(provider)
    session = boto3.session.Session(botocore_session=core)
    if session.get_credentials() is None:
        raise MediaSettingError(
            "an s3:// media URL is presigned with AWS credentials: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and AWS_ENDPOINT_URL_S3 for a store other than AWS"
        )
    return session.client("s3", config=Config(signature_version=_SIGNER))


def _windowed_query_auth(auth):
    class WindowedQueryAuth(auth.S3SigV4QueryAuth):
        """botocore's presigning, with the signing time given by the caller instead of read from the clock."""

        def _modify_request_before_signing(self, request):
            request.context["timestamp"] = _SIGNING_TIME.get().strftime(auth.SIGV4_TIMESTAMP)
            super()._modify_request_before_signing(request)

    return WindowedQueryAuth
