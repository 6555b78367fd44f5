"""Everything done to one photo before the model sees it: read, hash, decode, thumbnail, tensor.

This runs in DataLoader worker processes, in parallel with inference. Any
problem with the file becomes an error message on the result, never an
exception, so one bad photo cannot cost the others.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.index_file import THUMBNAIL_SIZES
from precompute.decode import DecodedPhoto, DecodeError, decode_photo
from precompute.photo_metadata import photo_fields
from precompute.preprocess import Preprocessing
from precompute.resize import model_crop
from precompute.scan import PhotoFile
from precompute.thumbnails import write_thumbnails

if TYPE_CHECKING:
    from precompute.evidence import EvidenceSpec, PhotoEvidence


@dataclass
class PreparedPhoto:
    position: int  # index into the list of photos being embedded
    pixels: list[np.ndarray] = field(default_factory=list)  # per scale, uint8 HWC: see resize.model_crop
    info: dict = field(default_factory=dict)  # what the index records about the photo
    error: str | None = None
    evidence: PhotoEvidence | None = None  # local features etc. for re-ranking (see precompute.evidence), when asked for


def decode_for_model(data: bytes, specs: list[Preprocessing]) -> DecodedPhoto:
    """Decode at the reduced size every indexed photo gets.

    A JPEG decoded at another draft scale gives slightly different pixels, so
    a query photo must be decoded with exactly these bounds too.
    """
    return decode_photo(data, min_shorter=max(spec.resize for spec in specs), min_longer=max(THUMBNAIL_SIZES.values()))


def decode_and_crop(data: bytes, specs: list[Preprocessing]) -> tuple[DecodedPhoto, np.ndarray, list[np.ndarray]]:
    """A photo's bytes to (decoded photo, its RGB pixels, the model's uint8 crop per scale).

    Indexing and search by photo both go through here, so an upload is seen
    by the model exactly as an indexed photo is. Raises DecodeError.
    """
    decoded = decode_for_model(data, specs)
    rgb = np.asarray(decoded.image)
    return decoded, rgb, [model_crop(rgb, spec) for spec in specs]


def prepare_photo(position: int, photo: PhotoFile, specs: list[Preprocessing], thumbnail_dir: Path,
                  evidence: EvidenceSpec | None = None) -> PreparedPhoto:
    """Read, hash, decode, thumbnail and crop one photo; with `evidence`, also extract its instance evidence
    from the same decoded pixels (OpenCV is imported only then)."""
    try:
        data = photo.path.read_bytes()
    except OSError as err:
        return PreparedPhoto(position, error=f"cannot read file: {err.strerror or err}")
    if not data:
        return PreparedPhoto(position, error="empty file")
    content_hash = hashlib.sha1(data).hexdigest()
    try:
        decoded, rgb, pixels = decode_and_crop(data, specs)
        thumbnails = write_thumbnails(rgb, thumbnail_dir, content_hash)
        extracted = _evidence(rgb, content_hash, (decoded.width, decoded.height), evidence) if evidence else None
    except DecodeError as err:
        return PreparedPhoto(position, error=str(err))
    except (OSError, ValueError) as err:  # e.g. a full disk while writing a thumbnail
        return PreparedPhoto(position, error=f"cannot process photo: {err}")
    info = {
        "path": photo.relpath,
        "size": photo.size,
        "mtime_ns": photo.mtime_ns,
        "sha1": content_hash,
        "width": decoded.width,
        "height": decoded.height,
        "thumbnails": thumbnails,
        **photo_fields(decoded.exif, photo.mtime_ns),
    }
    return PreparedPhoto(position, pixels, info, evidence=extracted)


def _evidence(rgb: np.ndarray, content_hash: str, image_size: tuple[int, int], spec: EvidenceSpec) -> PhotoEvidence:
    from precompute.evidence import extract_evidence

    return extract_evidence(rgb, content_hash, image_size, spec)
