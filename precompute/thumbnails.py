"""Small JPEG copies of each photo, so the web app never sends an original where less will do.

File names are derived from the photo's content hash (`index_file.thumbnail_name`,
which also owns the kinds and sizes): an unchanged photo keeps its files across
runs, and an interrupted run never overwrites a file that the previous index
still points to.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from core.atomic_write import atomic_file
from core.index_file import THUMBNAIL_SIZES, thumbnail_name
from precompute.resize import fit_within, resize

_JPEG_QUALITY = 85
# Huffman optimisation would save about 3.5% of the bytes (of files cached for a
# year) and cost about 15% of the whole per-photo preparation (see benchmarks/).


def write_thumbnails(pixels: np.ndarray, folder: Path, content_hash: str) -> dict[str, dict]:
    """Write every size in THUMBNAIL_SIZES for one photo, from its uint8 RGB pixels (H, W, 3); return {kind: {file, width, height}}.

    Sizes are made largest first, each from the one before: shrinking a 960 px
    preview to 320 px costs a fraction of shrinking the decoded photo again.
    """
    written = {}
    for kind, long_side in sorted(THUMBNAIL_SIZES.items(), key=lambda item: -item[1]):
        width, height = fit_within(pixels.shape[1], pixels.shape[0], long_side)
        pixels = resize(pixels, width, height, "bicubic")
        name = thumbnail_name(content_hash, kind)
        target = folder / name
        if not target.exists():
            with atomic_file(target, durable=False) as out:  # not synced one by one: a run writes thousands
                Image.fromarray(pixels, "RGB").save(out, "JPEG", quality=_JPEG_QUALITY)
        written[kind] = {"file": name, "width": width, "height": height}
    return {kind: written[kind] for kind in THUMBNAIL_SIZES}


def remove_unused(folder: Path, keep: set[str]) -> int:
    """Delete thumbnails no photo of the new index uses; return how many."""
    removed = 0
    for path in folder.glob("*.jpg"):
        if path.name not in keep:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
