"""The whole pipeline, scan → decode → embed → neighbours → index file, as one call."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from precompute import thumbnails
from precompute.embed import embed_photos, pick_device
from precompute.index_file import FORMAT, FORMAT_VERSION, write_index
from precompute.models import LoadedModel, load_model
from precompute.neighbours import top_k_neighbours
from precompute.query_expansion import expand
from precompute.scan import Skipped, scan_photos


class BuildError(Exception):
    """The run cannot produce an index; the message says why."""


@dataclass
class BuildOptions:
    model: str = "auto"
    weights: Path | None = None
    pooling: str = "avg"
    scales: tuple[int, ...] = ()  # () is the model's own input size
    query_expansion: int = 0  # neighbours mixed into each descriptor; 0 is off
    k: int = 10
    batch_size: int = 32
    workers: int | None = None  # None: one per core, up to 4
    device: str = "auto"


@dataclass
class BuildReport:
    index_path: Path
    thumbnail_dir: Path
    model: LoadedModel
    indexed: int
    skipped: list[Skipped] = field(default_factory=list)
    ignored: int = 0
    seconds: float = 0.0


def thumbnail_dir_for(index_path: Path) -> Path:
    return index_path.with_name(index_path.stem + "-thumbnails")


def build_index(
    photo_dir: Path,
    index_path: Path,
    options: BuildOptions,
    *,
    on_start: Callable[[int, LoadedModel], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BuildReport:
    """Index every photo under `photo_dir` into `index_path`; the previous index survives any failure."""
    started = time.monotonic()
    photo_dir, index_path = Path(photo_dir).resolve(), Path(index_path).resolve()
    if not photo_dir.is_dir():
        raise BuildError(f"photo folder not found: {photo_dir}")
    _check_writable(index_path.parent)
    scan = scan_photos(photo_dir)
    if not scan.photos:
        raise BuildError(f"no photos found in {photo_dir} (looked for JPEG, PNG, WebP, GIF, BMP and TIFF files)")
    model = load_model(options.model, options.weights, options.pooling, options.scales)
    if on_start:
        on_start(len(scan.photos), model)
    thumbnail_dir = thumbnail_dir_for(index_path)
    thumbnail_dir.mkdir(exist_ok=True)
    embedded = embed_photos(
        scan.photos,
        model,
        thumbnail_dir,
        batch_size=options.batch_size,
        workers=options.workers,
        device=pick_device(options.device),
        on_progress=on_progress,
    )
    skipped = scan.skipped + [Skipped(scan.photos[pos].relpath, why) for pos, why in embedded.failures]
    if not embedded.infos:
        raise BuildError(f"none of the {len(scan.photos)} photos in {photo_dir} could be read; no index written")
    for photo_id, info in enumerate(embedded.infos):
        info["id"] = photo_id
    embeddings = embedded.embeddings
    neighbours, scores = top_k_neighbours(embeddings, max(options.k, options.query_expansion))
    if options.query_expansion:
        embeddings = expand(embeddings, neighbours, scores, options.query_expansion)
        neighbours, scores = top_k_neighbours(embeddings, options.k)
    index = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": model.describe() | {"query_expansion": options.query_expansion},
        "photo_root": str(photo_dir),
        "thumbnail_dir": thumbnail_dir.name,
        "photos": embedded.infos,
        "embeddings": embeddings,
        "neighbors": neighbours,
        "scores": scores,
        "skipped": [{"path": s.relpath, "reason": s.reason} for s in skipped],
    }
    write_index(index, index_path)
    in_use = {t["file"] for info in embedded.infos for t in info["thumbnails"].values()}
    thumbnails.remove_unused(thumbnail_dir, in_use)
    return BuildReport(
        index_path,
        thumbnail_dir,
        model,
        indexed=len(embedded.infos),
        skipped=skipped,
        ignored=scan.ignored,
        seconds=time.monotonic() - started,
    )


def _check_writable(folder: Path) -> None:
    """Fail before hours of embedding, not after, if the index can't be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise BuildError(f"cannot write the index into {folder}: {err.strerror or err}") from None
