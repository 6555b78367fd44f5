"""An S3 bucket and prefix, reached through boto3 with the standard AWS credentials.

Shared by `python -m tools.publish` (writing media) and the web app
(reading an index archive from `s3://`). boto3 finds credentials the usual way
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, instance
roles) and the endpoint too (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3), so
S3-API stores (R2, B2, MinIO) work as AWS does. Nothing here signs anything by
hand. It needs only boto3, which the web runtime has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_KEY_PART = re.compile(r"[A-Za-z0-9_.~-]+")  # needs no quoting in a URL, so a URL + a name is the object


class BucketError(Exception):
    """The bucket cannot be used (bad URL, no credentials, unreachable, missing); the message says why, in one line."""


@dataclass(frozen=True)
class BucketPlace:
    """`s3://BUCKET/PREFIX`: the prefix is empty or ends with `/`, so a key is the prefix plus a name."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str, *, what: str = "--to") -> "BucketPlace":
        """Read `s3://BUCKET[/PREFIX]`; raise BucketError on anything else."""
        scheme, _, rest = url.partition("://")
        bucket, _, prefix = rest.partition("/")
        if scheme != "s3" or not bucket:
            raise BucketError(f"{what} must look like s3://BUCKET/PREFIX, not {url!r}")
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise BucketError(f"{bucket!r} is not a bucket name: 3 to 63 lower-case letters, digits, '.' and '-'")
        parts = prefix.strip("/").split("/") if prefix.strip("/") else []
        if any(part in (".", "..") or not _KEY_PART.fullmatch(part) for part in parts):
            raise BucketError(
                f"the prefix {prefix!r} in {what} may hold only letters, digits, '.', '_', '-', '~' and '/' "
                "between names (no '.' or '..' names), so that its URL needs no escaping"
            )
        return cls(bucket, "".join(part + "/" for part in parts))

    @classmethod
    def of_object(cls, url: str, *, what: str) -> tuple["BucketPlace", str]:
        """Read `s3://BUCKET/KEY` as the bucket and the key: any key, as it is only read, never composed into URLs."""
        bucket, _, key = url.removeprefix("s3://").partition("/")
        if not url.startswith("s3://") or not key:
            raise BucketError(f"{what} must look like s3://BUCKET/KEY, not {url!r}")
        return cls.parse(f"s3://{bucket}", what=what), key

    def key(self, name: str) -> str:
        return self.prefix + name

    def url(self, name: str = "") -> str:
        return f"s3://{self.bucket}/{self.key(name)}"


@dataclass(frozen=True)
class Listed:
    """What a listing says of an object: enough to tell whether the same bytes are there."""

    size: int
    etag: str  # without quotes; the MD5 in hex for a single-part upload without KMS encryption


def s3_client(endpoint_url: str | None = None, connections: int = 10) -> Any:
    """A boto3 S3 client with the standard credentials; BucketError if there are none."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.session.Session()
        if session.get_credentials() is None:
            raise BucketError(
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, "
                "or run where an instance role provides them"
            )
        return session.client("s3", endpoint_url=endpoint_url, config=Config(max_pool_connections=connections))
    except BotoCoreError as err:  # a named profile that does not exist, a malformed endpoint, …
        raise BucketError(describe(err)) from None


def listed_objects(client: Any, place: BucketPlace) -> dict[str, Listed]:
    """Every object under the prefix, listed once (1,000 a request): no request per object."""
    found: dict[str, Listed] = {}
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=place.bucket, Prefix=place.prefix):
            for item in page.get("Contents", ()):
                found[item["Key"]] = Listed(int(item["Size"]), item.get("ETag", "").strip('"'))
    except Exception as err:  # noqa: BLE001 - boto's and the network's errors, described in one line
        raise BucketError(f"cannot list {place.url()}: {describe(err, place.bucket)}") from None
    return found


def describe(err: BaseException, bucket: str | None = None) -> str:
    """One line saying what went wrong with a request, for a person (no traceback)."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code", "")) or str(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?"))
        if code == "NoSuchBucket" or (code == "404" and bucket):
            return f"the bucket {bucket!r} does not exist (or this endpoint does not have it)"
        if code in ("AccessDenied", "403"):
            return "access denied: the credentials need s3:ListBucket, s3:GetObject and s3:PutObject on the bucket"
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return f"{code}: the credentials are not accepted by this endpoint"
        return f"{code}: {error.get('Message') or err}"
    if isinstance(err, EndpointConnectionError):
        return f"cannot connect to {err.kwargs.get('endpoint_url', 'the endpoint')}: is the endpoint up?"
    if isinstance(err, NoCredentialsError):
        return "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
    return str(err).replace("\n", " ") or type(err).__name__
