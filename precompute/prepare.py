"""Everything done to one photo before the model sees it: read, hash, decode, thumbnail, tensor.

This runs in DataLoader worker processes, in parallel with inference. Any
problem with the file becomes an error message on the result, never an
exception, so one bad photo cannot cost the others.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from core.formats import isolated_decoder
from core.index_file import THUMBNAIL_SIZES
from precompute.decode import DecodedPhoto, DecodeError
from precompute.decoders import decode_photo
from precompute.isolation import in_child_process
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


def decode_for_model(data: bytes, specs: list[Preprocessing], name: str = "") -> DecodedPhoto:
    """Decode at the reduced size every indexed photo gets.

    A JPEG decoded at another draft scale gives slightly different pixels, so
    a query photo must be decoded with exactly these bounds too.
    """
    min_shorter, min_longer = max(spec.resize for spec in specs), max(THUMBNAIL_SIZES.values())
    if isolated_decoder(name):
        return in_child_process(_decode_to_send, data, min_shorter, min_longer, name)
    return decode_photo(data, min_shorter, min_longer, name)


def _decode_to_send(data: bytes, min_shorter: int, min_longer: int, name: str) -> DecodedPhoto:
    """`decode_photo` with its picture as a plain image, which pickles whole (a plugin's image object may not)."""
    decoded = decode_photo(data, min_shorter, min_longer, name)
    return replace(decoded, image=Image.fromarray(np.asarray(decoded.image)))


def decode_and_crop(data: bytes, specs: list[Preprocessing], name: str = "") -> tuple[DecodedPhoto, np.ndarray, list[np.ndarray]]:
    """A photo's bytes to (decoded photo, its RGB pixels, the model's uint8 crop per scale).

    Indexing and search by photo both go through here, so an upload is seen
    by the model exactly as an indexed photo is. `name` is the file's name,
    which picks the decoder (see core.formats); an upload has none.
    Raises DecodeError.
    """
    decoded = decode_for_model(data, specs, name)
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
        decoded, rgb, pixels = decode_and_crop(data, specs, photo.relpath)
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
