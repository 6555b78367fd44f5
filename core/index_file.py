"""Step 5: the index file, one pickle holding everything the web app needs. Its one owner.

This module decides what an index holds (its keys, the per-photo columns, the
thumbnail folder and the thumbnail names and kinds), builds new indexes
(`new_index`), writes them and reads them back, checked. A loaded index is an
`Index` (its model a `ModelInfo`, with the one `compatible()` check): callers
read typed attributes, and only this module knows the file's dict keys, which
stay as they were (`neighbors`, `expansion_neighbors`, ...) so that older files
keep loading.

The file (format version 2) is one pickle file in three parts:

1. a small pickle, the table of contents: the format marker and version, the
   length of part 2, and where each data buffer lies in part 3;
2. a pickle (protocol 5) of the index dict, whose numpy arrays are
   out-of-band buffers (`pickle.PickleBuffer`): the pickle holds only each
   array's dtype and shape;
3. the buffers, each starting on a page boundary, memory-mapped at load: the
   web app reads only the pages it uses, and gunicorn's workers share them
   through the page cache instead of each holding a copy.

Per-photo data are columns (numpy arrays; paths as one UTF-8 blob with
offsets), not a dict per photo: a million photos load in milliseconds. A
`PhotoTable` makes a photo's familiar dict on demand.

Writing is atomic (temporary file, fsync, rename), so an interrupted run
leaves the previous index intact, and a running app keeps its mapping of the
old file. Reading uses a restricted unpickler that allows only builtins and
plain numpy arrays (a pickle can run code when loaded, and an index file may
come from anywhere), then checks the table of contents, every column's dtype
and shape, ids, offsets and neighbour ids. An index of format version 1 (a
dict per photo, arrays inside the pickle) is refused by the web app with a
one-line message and upgraded by the next `python -m precompute` run.

This module needs only numpy, so the web app can use it without torch.
"""

from __future__ import annotations

import mmap
import os
import pickle
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np

from core.atomic_write import atomic_file

FORMAT = "lookalike-index"
FORMAT_VERSION = 2
_PAGE = mmap.ALLOCATIONGRANULARITY  # buffers start on this boundary so each one can be mapped alone
_SLASH = ord("/")
_CHECK_BLOCK = 4096  # photos checked at once where a check needs temporary arrays: bounded memory for millions
_MAX_BUFFERS = 64  # an index has a dozen arrays; each buffer is a mapping, and a process may hold only so many

# Long side in pixels of each thumbnail kind: `thumb` for grids and lists, `preview` for a photo's own page.
THUMBNAIL_SIZES = {"thumb": 320, "preview": 960}
_THUMBNAIL_KEY_BYTES = 10  # a thumbnail's name starts with 20 hex digits of the photo's content hash
_THUMBNAIL_NAME = re.compile(r"([0-9a-f]{20})-(\w+)\.jpg")

# The per-photo columns: name -> (dtype, shape after the photo axis). Paths are
# `path_bytes[path_offsets[i]:path_offsets[i + 1]]`, UTF-8 with surrogateescape
# (so a file name that is not valid UTF-8 survives).
PHOTO_COLUMNS: dict[str, tuple[type, tuple[int, ...]]] = {
    "id": (np.int64, ()),
    "size": (np.int64, ()),
    "mtime_ns": (np.int64, ()),
    "sha1": (np.uint8, (20,)),
    "dimensions": (np.int32, (2,)),  # width, height of the original
    "thumbnail_key": (np.uint8, (_THUMBNAIL_KEY_BYTES,)),
    "thumbnail_dimensions": (np.uint16, (len(THUMBNAIL_SIZES), 2)),  # per kind: width, height
}
# What the pipeline records of each photo's EXIF (precompute/photo_metadata.py reads it): optional columns,
# all present or all absent, since indexes written before them still load. `taken`: seconds since 1970 of
# the camera's clock read as UTC (EXIF DateTimeOriginal), else of the file's modification time, as
# `taken_source` says (an index into TAKEN_SOURCES); `exif_tags`: how many tags the photo carries. The camera
# model is text, `camera_bytes[camera_offsets[i]:camera_offsets[i + 1]]` (UTF-8, empty when unknown).
# Location is never recorded: the index travels to web servers and buckets.
METADATA_COLUMNS: dict[str, tuple[type, tuple[int, ...]]] = {
    "taken": (np.int64, ()),
    "taken_source": (np.uint8, ()),
    "exif_tags": (np.int32, ()),
}
METADATA_KEYS = (*METADATA_COLUMNS, "camera_offsets", "camera_bytes")
TAKEN_SOURCES = ("file", "exif")
MAX_CAMERA_CHARS = 64
_MAX_CAMERA_BYTES = 4 * MAX_CAMERA_CHARS  # UTF-8
# A photo's path relative to the photo folder: at most this many parts (folders and the file name) and bytes
# (UTF-8). The web app builds every folder above each photo (a path of 20,000 levels cost 2 GB at start) and the
# file system refuses paths past 4,096 bytes; real libraries stay far below both. `python -m precompute` skips
# a photo beyond them (`path_problem`) and a loaded index may hold none.
MAX_PATH_PARTS = 64
MAX_PATH_BYTES = 1024
# What an index records of its model (models.LoadedModel.describe, and the neighbour step's settings) and of
# which type: pages show the name and search loads the model from the rest, so a wrong type stops the load.
_MODEL_FIELDS = {"name": str, "dim": int, "weights": str, "pooling": str, "scales": list, "flip": bool,
                 "preprocessing": dict, "query_expansion": int, "neighbours": str, "rerank": str}
_PREPROCESSING_FIELDS = {"resize": int, "crop": int, "mean": list, "std": list, "interpolation": str}
_MAX_MODEL_TEXT = 4096  # characters in any text of it: `weights` can be a file path
_MAX_SCALES = 16
_MAX_CREATED_CHARS = 64
# Similar photos kept per photo. A photo page shows them all: an index with
# millions of columns would render a page of a gigabyte.
MAX_K = 1000

# Folders photos and thumbnails are never served from, whatever an index or the
# environment says: the first with everything under them, the second only as
# they are (a photo folder may well live under /home, /srv or /var/lib/lookalike).
SYSTEM_FOLDERS = tuple(
    Path(p) for p in ("/etc", "/proc", "/sys", "/dev", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/boot",
                      "/root", "/run", "/var/log", "/var/run")
)
TOO_BROAD_FOLDERS = frozenset(
    Path(p) for p in ("/", "/home", "/var", "/var/lib", "/opt", "/srv", "/tmp", "/mnt", "/media")
)

# What pickling a dict of builtins and numpy arrays refers to, in numpy 1 and 2.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }
)


def system_folder(folder: Path) -> bool:
    """Whether `folder` (resolved: no symlinks, no `..`) is one photos must never be served from."""
    return folder in TOO_BROAD_FOLDERS or any(folder.is_relative_to(system) for system in SYSTEM_FOLDERS)


class IndexFileError(Exception):
    """The index file is missing, damaged, foreign or of an unknown version."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise IndexFileError(f"refusing to load {module}.{name}: an index holds only builtins and numpy arrays")


def thumbnail_dir_for(index_path: Path) -> Path:
    """The thumbnails of `data/index.pkl` live in `data/index-thumbnails/`."""
    index_path = Path(index_path)
    return index_path.with_name(index_path.stem + "-thumbnails")


def thumbnail_name(content_hash: str, kind: str) -> str:
    """Named after the photo's content: unchanged photos keep their files, and a run never overwrites one in use."""
    return f"{content_hash[:2 * _THUMBNAIL_KEY_BYTES]}-{kind}.jpg"


def is_thumbnail_name(name: str) -> bool:
    """Whether `name` is one this format gives a thumbnail file: the only names a thumbnail folder holds."""
    match = _THUMBNAIL_NAME.fullmatch(name)
    return match is not None and match.group(2) in THUMBNAIL_SIZES


_THUMBNAIL_KINDS = tuple((kind, thumbnail_name("", kind)) for kind in THUMBNAIL_SIZES)  # kind, name after the hash


def display_name(path: str) -> str:
    """A path as valid UTF-8 text, even if it was not valid UTF-8 on disk: undecodable bytes become U+FFFD.

    For pages and exports, which must be text; the index keeps the exact bytes (surrogateescape).
    """
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class PhotoTable:
    """Every photo's record as columns; `table[row]` makes one photo's dict when a page needs it.

    The dict is what the pipeline produced and the web pages read: `id`,
    `path`, `size`, `mtime_ns`, `sha1` (hex), `width`, `height`,
    `thumbnails` ({kind: {file, width, height}}), and `taken` (seconds),
    `taken_source` ('exif' or 'file'), `camera` and `exif_tags`. An index
    written before the metadata columns gives the file time, 'file', ""
    and None for these (`has_metadata` says which).
    """

    def __init__(self, columns: dict[str, np.ndarray]):
        self.columns = columns
        self.ids: np.ndarray = columns["id"]
        self._offsets = columns["path_offsets"]
        self._paths = memoryview(np.ascontiguousarray(columns["path_bytes"])).cast("B")  # slices faster than numpy's
        self.has_metadata = "taken" in columns
        if self.has_metadata:
            self._cameras = memoryview(np.ascontiguousarray(columns["camera_bytes"])).cast("B")

    def taken(self) -> np.ndarray:
        """Every photo's date taken in seconds, as one int64 column: the file time where the index has no metadata."""
        return self.columns["taken"] if self.has_metadata else self.columns["mtime_ns"] // 1_000_000_000

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, row: int | slice) -> dict | list[dict]:
        if isinstance(row, slice):
            return self.records(range(*row.indices(len(self))))
        if not -len(self) <= row < len(self):
            raise IndexError(f"row {row} of {len(self)}")
        return self.record(row % len(self))

    def __iter__(self) -> Iterator[dict]:
        for start in range(0, len(self), 4096):
            yield from self.records(range(start, min(len(self), start + 4096)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PhotoTable):
            return NotImplemented
        return self.columns.keys() == other.columns.keys() and all(
            np.array_equal(self.columns[name], other.columns[name]) for name in self.columns
        )

    def path(self, row: int) -> str:
        start, stop = self._offsets[row : row + 2].tolist()
        return str(self._paths[start:stop], "utf-8", "surrogateescape")

    def display_paths(self, rows: np.ndarray) -> list[str]:
        """Many rows' paths as valid UTF-8 text (`display_name`), their offsets read at once: for exports of millions."""
        return [
            str(self._paths[start:stop], "utf-8", "replace")
            for start, stop in zip(self._offsets[rows].tolist(), self._offsets[rows + 1].tolist())
        ]

    def record(self, row: int) -> dict:
        return self.records([row])[0]

    def records(self, rows: Sequence[int]) -> list[dict]:
        """The dicts of several rows at once: each column is read once for all of them (a page's photos)."""
        if isinstance(rows, range) and rows.step == 1:  # a slice reads columns without numpy's fancy indexing
            rows, after = slice(rows.start, rows.stop), slice(rows.start + 1, rows.stop + 1)
        else:
            rows = np.asarray(rows, dtype=np.intp)
            after = rows + 1
        columns, paths = self.columns, self._paths
        sha1s = columns["sha1"][rows].tobytes().hex()
        keys = columns["thumbnail_key"][rows].tobytes().hex()
        step = 2 * _THUMBNAIL_KEY_BYTES
        (thumb, thumb_name), (preview, preview_name) = _THUMBNAIL_KINDS  # two kinds: spelt out, for speed
        records = [
            {
                "id": photo_id,
                "path": str(paths[start:stop], "utf-8", "surrogateescape"),
                "size": size,
                "mtime_ns": mtime_ns,
                "sha1": sha1s[40 * i : 40 * i + 40],
                "width": width,
                "height": height,
                "thumbnails": {
                    thumb: {"file": keys[step * i : step * i + step] + thumb_name, "width": tw, "height": th},
                    preview: {"file": keys[step * i : step * i + step] + preview_name, "width": pw, "height": ph},
                },
            }
            for i, (photo_id, start, stop, size, mtime_ns, (width, height), ((tw, th), (pw, ph))) in enumerate(
                zip(
                    self.ids[rows].tolist(),
                    self._offsets[rows].tolist(),
                    self._offsets[after].tolist(),
                    columns["size"][rows].tolist(),
                    columns["mtime_ns"][rows].tolist(),
                    columns["dimensions"][rows].tolist(),
                    columns["thumbnail_dimensions"][rows].tolist(),
                )
            )
        ]
        self._add_metadata(records, rows, after)
        return records

    def _add_metadata(self, records: list[dict], rows: slice | np.ndarray, after: slice | np.ndarray) -> None:
        if not self.has_metadata:
            for record in records:
                record.update(taken=record["mtime_ns"] // 1_000_000_000, taken_source="file", camera="", exif_tags=None)
            return
        columns, cameras = self.columns, self._cameras
        for record, taken, source, tags, start, stop in zip(
            records,
            columns["taken"][rows].tolist(),
            columns["taken_source"][rows].tolist(),
            columns["exif_tags"][rows].tolist(),
            columns["camera_offsets"][rows].tolist(),
            columns["camera_offsets"][after].tolist(),
        ):
            record.update(taken=taken, taken_source=TAKEN_SOURCES[source], camera=str(cameras[start:stop], "utf-8", "replace"),
                          exif_tags=tags)

    @classmethod
    def from_records(cls, records: Iterable[dict]) -> "PhotoTable":
        """Columns from the pipeline's per-photo dicts; a record that does not fit raises IndexFileError."""
        records = list(records)
        n = len(records)
        columns = {name: np.zeros((n, *shape), dtype) for name, (dtype, shape) in PHOTO_COLUMNS.items()}
        paths = []
        for row, record in enumerate(records):
            problem = _record_problem(record)
            if problem:
                raise IndexFileError(f"photo {row}: {problem}")
            try:
                _fill_row(columns, row, record)
                paths.append(record["path"].encode("utf-8", "surrogateescape"))
            except (OverflowError, TypeError, ValueError) as err:  # numbers too large for their column, odd text
                raise IndexFileError(f"photo {row}: {err}") from None
        columns.update(path_columns(paths))
        columns.update(_metadata_columns(records))
        return cls(columns)


def _metadata_columns(records: list[dict]) -> dict[str, np.ndarray]:
    """The metadata columns when every record has the metadata; none when no record has (an older index's)."""
    having = [record.get("exif_tags") is not None for record in records]
    if not any(having):
        return {}
    if not all(having):
        raise IndexFileError(f"photo {having.index(False)}: no metadata ('taken', 'camera', 'exif_tags'), where others have it")
    try:
        sources = [TAKEN_SOURCES.index(record["taken_source"]) for record in records]
        cameras = [record["camera"].encode("utf-8", "replace")[:_MAX_CAMERA_BYTES] for record in records]
        columns = {
            "taken": np.array([record["taken"] for record in records], np.int64),
            "taken_source": np.array(sources, np.uint8),
            "exif_tags": np.array([record["exif_tags"] for record in records], np.int32),
        }
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError) as err:
        raise IndexFileError(f"photo metadata does not fit its columns: {err!r}") from None
    return columns | text_columns("camera", cameras)


def _fill_row(columns: dict[str, np.ndarray], row: int, record: dict) -> None:
    columns["id"][row] = record["id"]
    columns["size"][row] = record["size"]
    columns["mtime_ns"][row] = record.get("mtime_ns", 0)
    columns["sha1"][row] = np.frombuffer(bytes.fromhex(record["sha1"]), np.uint8)
    columns["dimensions"][row] = (record["width"], record["height"])
    thumbnails = record["thumbnails"]
    key = _THUMBNAIL_NAME.fullmatch(thumbnails[next(iter(THUMBNAIL_SIZES))]["file"]).group(1)
    columns["thumbnail_key"][row] = np.frombuffer(bytes.fromhex(key), np.uint8)
    columns["thumbnail_dimensions"][row] = [(thumbnails[k]["width"], thumbnails[k]["height"]) for k in THUMBNAIL_SIZES]


def path_columns(encoded_paths: list[bytes]) -> dict[str, np.ndarray]:
    """`path_offsets` and `path_bytes` for paths already encoded (UTF-8, surrogateescape)."""
    return text_columns("path", encoded_paths)


def text_columns(name: str, encoded: list[bytes]) -> dict[str, np.ndarray]:
    """`NAME_offsets` and `NAME_bytes`: one blob of every photo's text, and where each one starts and ends."""
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(text) for text in encoded], out=offsets[1:])
    return {f"{name}_offsets": offsets, f"{name}_bytes": np.frombuffer(b"".join(encoded), np.uint8)}


# What each pipeline record must hold, and of which type.
_RECORD_FIELDS = {"id": int, "path": str, "sha1": str, "size": int, "width": int, "height": int, "thumbnails": dict}


def _record_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return "not a dict"
    for key, kind in _RECORD_FIELDS.items():
        if not isinstance(record.get(key), kind):
            return f"'{key}' must be a {kind.__name__}"
    if record["id"] < 0:
        return "'id' must not be negative"
    if not re.fullmatch(r"[0-9a-f]{40}", record["sha1"]):
        return "'sha1' must be 40 hex digits"
    keys = set()
    for kind in THUMBNAIL_SIZES:
        entry = record["thumbnails"].get(kind)
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), int) for k in ("width", "height")):
            return f"thumbnail '{kind}' must have a file name, width and height"
        match = _THUMBNAIL_NAME.fullmatch(str(entry.get("file")))
        if match is None or match.group(2) != kind:
            return f"thumbnail '{kind}' must be named like {thumbnail_name('0' * 40, kind)!r}, not {entry.get('file')!r}"
        keys.add(match.group(1))
    if len(keys) != 1:
        return "every thumbnail of a photo must be named after the same content hash"
    return None


# What decides how a photo becomes a descriptor: two models that agree on these give comparable embeddings.
# (Query expansion and the neighbour method act after embedding, on the stored descriptors.)
DESCRIPTOR_KEYS = ("name", "dim", "weights", "pooling", "scales", "preprocessing", "flip")


@dataclass(frozen=True)
class ModelInfo:
    """The index's `model` entry, typed: how its embeddings were made, so a query or an update makes them alike.

    Keys an older index lacks read as their defaults: it was built before they could differ.
    """

    name: str = ""
    dim: int | None = None
    weights: str = ""  # where the weights came from: `file PATH` for `--weights PATH`
    pooling: str = "avg"
    scales: tuple[int, ...] = ()
    preprocessing: dict | None = None
    flip: bool = False
    query_expansion: int = 0  # αQE's n; 0 is off
    neighbours: str = "exact"  # how the lists were found: exact or approx
    rerank: str = "off"  # the evidence the lists were re-ranked by (`--rerank`): off, local, sscd, local+sscd
    recorded: dict = field(default_factory=dict, repr=False, compare=False)  # as the file holds it, written back as is

    @classmethod
    def from_dict(cls, recorded: Any) -> "ModelInfo":
        """Read a `model` entry; IndexFileError if it is not a model's description (the one check, at load too)."""
        if not isinstance(recorded, dict) or type(recorded.get("name")) is not str:
            raise IndexFileError("'model' must describe the embedding model, with its name")
        _check_fields("'model'", recorded, _MODEL_FIELDS)
        if recorded.get("dim", 0) < 0 or recorded.get("query_expansion", 0) < 0:
            raise IndexFileError("'model' 'dim' and 'query_expansion' must not be negative")
        scales = recorded.get("scales", [])
        if len(scales) > _MAX_SCALES or not all(type(scale) is int and 0 < scale <= 2**16 for scale in scales):
            raise IndexFileError(f"'model' 'scales' must be at most {_MAX_SCALES} input sizes in pixels")
        preprocessing = recorded.get("preprocessing", {})
        _check_fields("'model' 'preprocessing'", preprocessing, _PREPROCESSING_FIELDS)
        for key in ("mean", "std"):
            if key in preprocessing and not (
                len(preprocessing[key]) == 3 and all(type(value) in (int, float) for value in preprocessing[key])
            ):
                raise IndexFileError(f"'model' 'preprocessing' '{key}' must be three numbers")
        values = {name: recorded[name] for name in _MODEL_FIELDS if name in recorded}
        values["scales"] = tuple(values.get("scales", ()))
        return cls(**values, recorded=dict(recorded))

    def as_dict(self) -> dict:
        """The `model` entry as recorded, with any field changed since (`dataclasses.replace`); defaults stay absent."""
        recorded = dict(self.recorded)
        for name in _MODEL_FIELDS:
            value, default = getattr(self, name), _MODEL_DEFAULTS[name]
            if name in recorded or value != default:
                recorded[name] = list(value) if name == "scales" else value
        return recorded

    def mismatch(self, other: "ModelInfo", keys: Sequence[str] = DESCRIPTOR_KEYS) -> str | None:
        """The first of `keys` (name first) on which the two models differ, as `key: ours, now theirs`; None if none."""
        for key in sorted(keys, key=lambda k: (k != "name", k)):
            ours, theirs = getattr(self, key), getattr(other, key)
            if ours != theirs:
                return f"{key}: {_shown(ours)!r}, now {_shown(theirs)!r}"
        return None

    def compatible(self, other: "ModelInfo", keys: Sequence[str] = DESCRIPTOR_KEYS) -> bool:
        """Whether embeddings made by `other` can stand beside this model's (compared on `keys`)."""
        return self.mismatch(other, keys) is None


_MODEL_DEFAULTS = {name: getattr(ModelInfo, name) for name in _MODEL_FIELDS}


def _shown(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value  # scales as the file records them


@dataclass(frozen=True)
class Index:
    """A loaded index, typed: what `read_index` returns and `write_index` writes.

    `neighbours` and `scores` are the k most similar photos of each row and their cosines, best first;
    `expansion` is αQE's first pass (neighbour ids, scores), kept so that an update can tell which rows changed.
    """

    photos: PhotoTable
    embeddings: np.ndarray
    neighbours: np.ndarray
    scores: np.ndarray
    model: ModelInfo
    photo_root: str
    thumbnail_dir: str
    created: str = ""
    next_id: int = 0
    skipped: list[dict] = field(default_factory=list)
    expansion: tuple[np.ndarray, np.ndarray] | None = None
    # Verified "same picture" pairs (rows, m × 2, lower first); None: built without the evidence to verify them.
    same_picture: np.ndarray | None = None
    same_picture_check: dict = field(default_factory=dict)  # the settings the pairs were verified with
    # Pairs verified as one scene and not one picture (two shots); None where `same_picture` is None or older.
    different_picture: np.ndarray | None = None
    verified: np.ndarray | None = None  # with --rerank: N × k, whether local features confirmed each listed pair

    @classmethod
    def from_dict(cls, index: dict) -> "Index":
        """From the file's dict (validated: see `validate_index`)."""
        photos = index["photos"] if isinstance(index["photos"], PhotoTable) else PhotoTable(index["photos"])
        used = int(photos.ids.max(initial=-1)) + 1
        next_id = index.get("next_id")
        expansion = None
        if "expansion_neighbors" in index:
            expansion = (index["expansion_neighbors"], index["expansion_scores"])
        return cls(
            photos=photos,
            embeddings=index["embeddings"],
            neighbours=index["neighbors"],
            scores=index["scores"],
            model=index["model"] if isinstance(index["model"], ModelInfo) else ModelInfo.from_dict(index["model"]),
            photo_root=index["photo_root"],
            thumbnail_dir=index["thumbnail_dir"],
            created=index.get("created") if isinstance(index.get("created"), str) else "",
            next_id=max(used, next_id) if type(next_id) is int else used,
            skipped=index.get("skipped") if isinstance(index.get("skipped"), list) else [],
            expansion=expansion,
            same_picture=index.get("same_picture"),
            same_picture_check=index.get("same_picture_check") or {},
            different_picture=index.get("different_picture"),
            verified=index.get("verified"),
        )

    def as_dict(self) -> dict:
        """The file's dict (its keys spelt as the format has always spelt them)."""
        index = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created": self.created,
            "model": self.model.as_dict(),
            "photo_root": self.photo_root,
            "thumbnail_dir": self.thumbnail_dir,
            "photos": self.photos,
            "embeddings": self.embeddings,
            "neighbors": self.neighbours,
            "scores": self.scores,
            "next_id": self.next_id,
            "skipped": self.skipped,
        }
        if self.expansion is not None:
            index["expansion_neighbors"], index["expansion_scores"] = self.expansion
        if self.same_picture is not None:
            index["same_picture"], index["same_picture_check"] = self.same_picture, self.same_picture_check
        if self.different_picture is not None:
            index["different_picture"] = self.different_picture
        if self.verified is not None:
            index["verified"] = self.verified
        return index

    @property
    def k(self) -> int:
        """Similar photos kept per photo."""
        return self.neighbours.shape[1]


def new_index(
    photos: PhotoTable | list[dict],
    embeddings: np.ndarray,
    neighbours: np.ndarray,
    scores: np.ndarray,
    *,
    model: dict,
    photo_root: str,
    thumbnail_dir: str,
    next_id: int | None = None,
    skipped: list[dict] | None = None,
    created: str | None = None,
    expansion: tuple[np.ndarray, np.ndarray] | None = None,
    same_picture: np.ndarray | None = None,
    same_picture_check: dict | None = None,
    different_picture: np.ndarray | None = None,
    verified: np.ndarray | None = None,
) -> Index:
    """A new index, ready for `write_index`; `model` is the model's description (`LoadedModel.describe()` and more).

    `expansion`: αQE's first-pass neighbour ids and scores, kept so that an update can tell which rows changed.
    `same_picture`: the verified "same picture" pairs (`precompute.same_picture`), row pairs (m × 2 int32, first
    row below second); None when the index was built without the evidence to verify them. `same_picture_check`:
    the settings they were verified with (plain values), so an update knows whether their verdicts still hold.
    `different_picture`: the candidate pairs verified as one scene and not one picture, in the same form.
    `verified`: with `--rerank`, N × k bool: whether local features confirmed the listed photo shows the same scene.
    """
    table = photos if isinstance(photos, PhotoTable) else PhotoTable.from_records(photos)
    return Index(
        photos=table,
        embeddings=embeddings,
        neighbours=neighbours,
        scores=scores,
        model=ModelInfo.from_dict(model),
        photo_root=photo_root,
        thumbnail_dir=thumbnail_dir,
        created=created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        next_id=next_id if next_id is not None else int(table.ids.max(initial=-1)) + 1,
        skipped=skipped or [],
        expansion=expansion,
        same_picture=None if same_picture is None else np.asarray(same_picture, np.int32).reshape(-1, 2),
        same_picture_check=dict(same_picture_check or {}),
        different_picture=None if different_picture is None else np.asarray(different_picture, np.int32).reshape(-1, 2),
        verified=verified,
    )


def write_index(index: Index | dict, path: Path) -> None:
    """Write `index` to `path` atomically: readers see the old file or the new, never a mix.

    A dict is written as it is, in the file's own layout (tests make damaged files this way).
    """
    with atomic_file(Path(path)) as out:
        dump_index(index, out)


def dump_index(index: Index | dict, out: IO[bytes]) -> None:
    """The three parts of an index file (see the module docstring), written to a binary file."""
    if isinstance(index, Index):
        index = index.as_dict()
    payload = {key: _plain(value) for key, value in index.items()}
    if isinstance(index.get("photos"), PhotoTable):
        payload["photos"] = {name: _plain(column) for name, column in index["photos"].columns.items()}
    buffers: list[pickle.PickleBuffer] = []
    stream = pickle.dumps(payload, protocol=5, buffer_callback=buffers.append)
    raw = [buffer.raw() for buffer in buffers]
    layout, offset = [], 0
    for data in raw:
        layout.append([offset, data.nbytes])
        offset = _page_aligned(offset + data.nbytes)
    contents = {"format": FORMAT, "version": FORMAT_VERSION, "stream_bytes": len(stream), "buffers": layout}
    head = pickle.dumps(contents, protocol=5) + stream
    out.write(head)
    data_start = _page_aligned(len(head))
    written = len(head)
    for (offset, _), data in zip(layout, raw):
        out.write(bytes(data_start + offset - written))
        out.write(data)
        written = data_start + offset + data.nbytes


def _plain(value: Any) -> Any:
    """numpy subclasses (np.memmap) as plain contiguous arrays: the unpickler accepts nothing else."""
    return np.ascontiguousarray(value) if isinstance(value, np.ndarray) else value


def _page_aligned(offset: int) -> int:
    return -(-offset // _PAGE) * _PAGE


def read_index(path: Path, *, upgrade: bool = False) -> Index:
    """Load and validate an index file, its arrays memory-mapped; raise IndexFileError with a clear reason.

    With `upgrade`, an index of format version 1 is read and converted (the
    pipeline does this, so its next run writes the current format); without,
    it is refused with a message saying how to upgrade it.
    """
    path = Path(path)
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        raise IndexFileError(f"index file not found: {path}") from None
    except OSError as err:
        raise IndexFileError(f"cannot read index file {path}: {err.strerror or err}") from None
    with file:
        try:
            contents = _unpickle(file)
            if isinstance(contents, dict) and contents.get("version") == 1 and "photos" in contents:
                index = _from_version_1(contents, path, upgrade)
            else:
                _check_version(contents)
                stream_start = file.tell()
                index = _unpickle(file, _mapped_buffers(file, contents, stream_start))
                if file.tell() != stream_start + contents["stream_bytes"]:
                    raise IndexFileError("its pickle does not end where its table of contents says")
        except IndexFileError as err:
            raise IndexFileError(f"{path}: {err}") from None
        except OSError as err:
            raise IndexFileError(f"cannot read index file {path}: {err.strerror or err}") from None
    try:
        validate_index(index)
    except IndexFileError as err:
        raise IndexFileError(f"{path}: {err}") from None
    return Index.from_dict(index)


def _unpickle(file: IO[bytes], buffers: list | None = None) -> Any:
    """One pickle from `file`, through the restricted unpickler; every failure as IndexFileError."""
    used = _Counted(buffers or [])
    try:
        value = _RestrictedUnpickler(file, buffers=used).load()
    except IndexFileError as err:
        raise IndexFileError(f"not a Lookalike index: {err}") from None
    except (ValueError, TypeError) as err:
        if buffers and used.count:  # numpy's _frombuffer: the bytes do not fill the declared shape
            raise IndexFileError(f"a data buffer does not match its array's declared dtype and shape ({err})") from None
        raise IndexFileError(f"damaged or not a Lookalike index ({type(err).__name__}: {err})") from None
    except Exception as err:  # truncated or garbage pickles raise many types
        raise IndexFileError(f"damaged or not a Lookalike index ({type(err).__name__}: {err})") from None
    if used.count != len(used.items):
        raise IndexFileError(f"its table of contents lists {len(used.items)} data buffers, its pickle uses {used.count}")
    return value


class _Counted:
    """The out-of-band buffers, counting how many the pickle took."""

    def __init__(self, items: list):
        self.items, self.count = items, 0

    def __iter__(self) -> "_Counted":
        return self

    def __next__(self) -> Any:
        if self.count == len(self.items):
            raise StopIteration
        self.count += 1
        return self.items[self.count - 1]


def _check_version(contents: Any) -> None:
    if not isinstance(contents, dict) or contents.get("format") != FORMAT:
        raise IndexFileError("not a Lookalike index (no format marker)")
    version = contents.get("version")
    if version != FORMAT_VERSION:
        raise IndexFileError(
            f"index format version {version!r} is not supported (this Lookalike reads version {FORMAT_VERSION}); "
            "rebuild the index with this version of precompute"
        )


def _mapped_buffers(file: IO[bytes], contents: dict, stream_start: int) -> list:
    """Each buffer of the table of contents, memory-mapped read-only, after checking it lies inside the file."""
    stream_bytes, layout = contents.get("stream_bytes"), contents.get("buffers")
    if not _whole(stream_bytes) or not isinstance(layout, list):
        raise IndexFileError("its table of contents is damaged")
    if len(layout) > _MAX_BUFFERS:
        raise IndexFileError(f"its table of contents lists {len(layout)} data buffers; an index has at most {_MAX_BUFFERS}")
    data_start = _page_aligned(stream_start + stream_bytes)
    size = os.fstat(file.fileno()).st_size
    buffers, end = [], 0
    for entry in layout:
        if not (isinstance(entry, list) and len(entry) == 2 and all(map(_whole, entry))):
            raise IndexFileError("its table of contents is damaged")
        offset, length = entry
        if offset % _PAGE or offset < end:
            raise IndexFileError("its data buffers overlap or are not page-aligned")
        end = offset + length
        if data_start + end > size:
            raise IndexFileError(
                f"the file is truncated: its data runs to byte {data_start + end:,}, the file has {size:,} bytes"
            )
        buffers.append(_map(file, data_start + offset, length))
    return buffers


def _whole(value: Any) -> bool:
    return type(value) is int and value >= 0


def _map(file: IO[bytes], offset: int, length: int) -> memoryview:
    if length == 0:
        return memoryview(b"")
    return memoryview(mmap.mmap(file.fileno(), length, access=mmap.ACCESS_READ, offset=offset))


def _from_version_1(index: dict, path: Path, upgrade: bool) -> dict:
    if not upgrade:
        raise IndexFileError(
            f"this index is in format version 1, from an older Lookalike; run `python -m precompute PHOTOS --out {path}` "
            "once to upgrade it (it reuses the stored embeddings)"
        )
    if index.get("format") != FORMAT or not isinstance(index.get("photos"), list):
        raise IndexFileError("not a Lookalike index (no format marker)")
    return {**index, "version": FORMAT_VERSION, "photos": PhotoTable.from_records(index["photos"]).columns}


def validate_index(index: Any) -> None:
    """Check the format, version, every column's dtype and shape, ids and offsets, neighbour ids in range."""
    _check_version(index)
    photos = index.get("photos")
    if isinstance(photos, PhotoTable):
        photos = photos.columns
    if not isinstance(photos, dict):
        raise IndexFileError("'photos' must be a dict of columns")
    n = _check_photo_columns(photos)
    embeddings = _array(index, "embeddings", np.float32, 2)  # float16 was measured and not adopted: docs/quality.md
    neighbours = _array(index, "neighbors", np.int32, 2)
    scores = _array(index, "scores", np.float32, 2)
    if embeddings.shape[0] != n:
        raise IndexFileError(f"'embeddings' has {embeddings.shape[0]} rows for {n} photos")
    if neighbours.shape[0] != n or scores.shape != neighbours.shape:
        raise IndexFileError(f"'neighbors' {neighbours.shape} and 'scores' {scores.shape} must both be {n}×k")
    if neighbours.size and (neighbours.min() < 0 or neighbours.max() >= n):
        raise IndexFileError("'neighbors' refers to photos that are not in the index")
    if neighbours.shape[1] > MAX_K:
        raise IndexFileError(f"'neighbors' keeps {neighbours.shape[1]} similar photos per photo; at most {MAX_K} are served")
    ModelInfo.from_dict(index.get("model"))
    _check_created(index.get("created", ""))
    if "expansion_neighbors" in index or "expansion_scores" in index:  # αQE's first pass, for updates
        first = _array(index, "expansion_neighbors", np.int32, 2)
        if first.shape[0] != n or _array(index, "expansion_scores", np.float32, 2).shape != first.shape:
            raise IndexFileError(f"'expansion_neighbors' and 'expansion_scores' must both be {n}×k")
        if first.size and (first.min() < 0 or first.max() >= n):
            raise IndexFileError("'expansion_neighbors' refers to photos that are not in the index")
    for key in ("same_picture", "different_picture"):  # verified copies and shots: optional, as is the evidence
        if key in index:
            pairs = _array(index, key, np.int32, 2)
            if pairs.shape[1:] != (2,) or (pairs.size and (pairs.min() < 0 or pairs.max() >= n or (pairs[:, 0] >= pairs[:, 1]).any())):
                raise IndexFileError(f"'{key}' must be pairs of rows of the index, the lower row first")
    if "same_picture" in index:
        if not isinstance(index.get("same_picture_check", {}), dict):
            raise IndexFileError("'same_picture_check' must be a dict of the settings the pairs were verified with")
    if "verified" in index and _array(index, "verified", np.bool_, 2).shape != neighbours.shape:
        raise IndexFileError(f"'verified' must be {n}×k like 'neighbors'")
    thumbnail_dir = index.get("thumbnail_dir")
    if not isinstance(thumbnail_dir, str) or not _plain_name(thumbnail_dir):
        raise IndexFileError(f"'thumbnail_dir' must be a folder name beside the index, not {thumbnail_dir!r}")
    if not isinstance(index.get("photo_root"), str):
        raise IndexFileError("'photo_root' must name the folder of the original photos")


def _check_photo_columns(columns: dict) -> int:
    """The number of photos, once every column has the right dtype and shape and the paths are sound."""
    ids = _array(columns, "id", np.int64, 1, "photos")
    n = len(ids)
    for name, (dtype, shape) in PHOTO_COLUMNS.items():
        column = _array(columns, name, dtype, 1 + len(shape), "photos")
        if column.shape != (n, *shape):
            raise IndexFileError(f"photos '{name}' has shape {column.shape}, not {(n, *shape)}")
    if n and ids.min() < 0:
        raise IndexFileError("photo ids must not be negative")
    if n and not np.array_equal(ids, np.arange(n)):
        ordered = np.sort(ids)
        if np.any(ordered[1:] == ordered[:-1]):
            raise IndexFileError("every photo needs a unique 'id'")
    if n and columns["dimensions"].min() < 0:
        raise IndexFileError("photo dimensions must not be negative")
    offsets = _array(columns, "path_offsets", np.int64, 1, "photos")
    paths = _array(columns, "path_bytes", np.uint8, 1, "photos")
    if offsets.shape != (n + 1,) or offsets[0] != 0 or offsets[-1] != len(paths) or np.any(offsets[1:] <= offsets[:-1]):
        raise IndexFileError("photos 'path_offsets' must rise from 0 to the end of 'path_bytes', one non-empty path a photo")
    if not paths.all():
        raise IndexFileError("a photo path holds a NUL byte")
    _check_path_sizes(offsets, paths)
    _check_metadata_columns(columns, n)
    return n


def _check_metadata_columns(columns: dict, n: int) -> None:
    present = [key for key in METADATA_KEYS if key in columns]
    if not present:
        return  # an index from before the metadata columns
    if len(present) != len(METADATA_KEYS):
        missing = ", ".join(repr(key) for key in METADATA_KEYS if key not in columns)
        raise IndexFileError(f"photos has some metadata columns but not {missing}")
    for name, (dtype, shape) in METADATA_COLUMNS.items():
        column = _array(columns, name, dtype, 1 + len(shape), "photos")
        if column.shape != (n, *shape):
            raise IndexFileError(f"photos '{name}' has shape {column.shape}, not {(n, *shape)}")
    if n and columns["taken_source"].max() >= len(TAKEN_SOURCES):
        raise IndexFileError(f"photos 'taken_source' must be below {len(TAKEN_SOURCES)} ({', '.join(TAKEN_SOURCES)})")
    if n and columns["exif_tags"].min() < 0:
        raise IndexFileError("photos 'exif_tags' must not be negative")
    offsets = _array(columns, "camera_offsets", np.int64, 1, "photos")
    cameras = _array(columns, "camera_bytes", np.uint8, 1, "photos")
    lengths = np.diff(offsets)
    if offsets.shape != (n + 1,) or offsets[0] != 0 or offsets[-1] != len(cameras) or np.any(lengths < 0):
        raise IndexFileError("photos 'camera_offsets' must rise from 0 to the end of 'camera_bytes'")
    if n and lengths.max() > _MAX_CAMERA_BYTES:
        raise IndexFileError(f"a photo's camera name is over {_MAX_CAMERA_BYTES} bytes")


def _check_path_sizes(offsets: np.ndarray, paths: np.ndarray) -> None:
    """Every path within MAX_PATH_BYTES and MAX_PATH_PARTS, a block of photos at a time (little memory for millions)."""
    for start in range(0, len(offsets) - 1, _CHECK_BLOCK):
        bounds = offsets[start : start + _CHECK_BLOCK + 1]
        longest = int(np.diff(bounds).max())
        if longest > MAX_PATH_BYTES:
            raise IndexFileError(f"a photo path has {longest:,} bytes; an index keeps paths of at most {MAX_PATH_BYTES}")
        slashes = np.add.reduceat(paths[bounds[0] : bounds[-1]] == _SLASH, bounds[:-1] - bounds[0], dtype=np.int64)
        if int(slashes.max()) + 1 > MAX_PATH_PARTS:
            raise IndexFileError(
                f"a photo path has {int(slashes.max()) + 1:,} levels; an index keeps paths of at most {MAX_PATH_PARTS}"
            )


def path_problem(relpath: str) -> str | None:
    """Why a photo at `relpath` (relative to the photo folder) cannot be in an index, or None: too long or too deep."""
    size, parts = len(relpath.encode("utf-8", "surrogateescape")), relpath.count("/") + 1
    if size > MAX_PATH_BYTES:
        return f"path of {size:,} bytes; an index keeps paths of at most {MAX_PATH_BYTES}"
    if parts > MAX_PATH_PARTS:
        return f"path of {parts:,} levels; an index keeps paths of at most {MAX_PATH_PARTS}"
    return None


def _check_fields(where: str, fields: dict, types: dict[str, type]) -> None:
    for key, kind in types.items():
        value = fields.get(key, kind())
        if type(value) is not kind:  # exactly: True is not a dimension
            raise IndexFileError(f"{where} '{key}' must be of type {kind.__name__}, not {type(value).__name__}")
        if kind is str and len(value) > _MAX_MODEL_TEXT:
            raise IndexFileError(f"{where} '{key}' is over {_MAX_MODEL_TEXT} characters")


def _check_created(created: Any) -> None:
    """When the index was built, as ISO 8601 text: every page's footer shows it."""
    try:
        if type(created) is not str or len(created) > _MAX_CREATED_CHARS:
            raise ValueError
        if created:
            datetime.fromisoformat(created)
    except ValueError:
        raise IndexFileError(f"'created' must be an ISO 8601 time (\"2026-01-01T00:00:00+00:00\"), not {created!r:.80}") from None


def _plain_name(name: str) -> bool:
    """A file or folder name with no way out of its folder: no separators, not hidden, not `.` or `..`."""
    return bool(name) and "/" not in name and "\\" not in name and "\0" not in name and not name.startswith(".")


def _array(index: dict, key: str, dtype: type, ndim: int, where: str = "") -> np.ndarray:
    value = index.get(key)
    if not isinstance(value, np.ndarray) or value.dtype != dtype or value.ndim != ndim:
        prefix = f"{where} " if where else ""
        raise IndexFileError(f"{prefix}'{key}' must be a {ndim}-d {np.dtype(dtype).name} array")
    return value
