"""Two indexes hold the same result: what an update, or a run elsewhere, must reproduce of a local full build."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def by_path(index: dict) -> dict[str, int]:
    return {photo["path"]: row for row, photo in enumerate(index.photos)}


def assert_same_index(incremental: dict, full: dict) -> None:
    """Same photos, embeddings, neighbours and scores, compared per path (ids may differ)."""
    rows, full_rows = by_path(incremental), by_path(full)
    assert list(rows) == list(full_rows)
    for path, row in rows.items():
        full_row = full_rows[path]
        np.testing.assert_allclose(incremental.embeddings[row], full.embeddings[full_row], atol=1e-5)
        names = [incremental.photos[n]["path"] for n in incremental.neighbours[row]]
        full_names = [full.photos[n]["path"] for n in full.neighbours[full_row]]
        assert names == full_names, path
        np.testing.assert_allclose(incremental.scores[row], full.scores[full_row], atol=1e-5)
        assert (incremental.verified is None) == (full.verified is None)
        if full.verified is not None:
            assert incremental.verified[row].tolist() == full.verified[full_row].tolist(), path
        for key in ("sha1", "size", "mtime_ns", "width", "height", "thumbnails", "taken", "taken_source", "camera", "exif_tags"):
            assert incremental.photos[row][key] == full.photos[full_row][key], (path, key)


def assert_same_build(index: dict, thumbnails: Path, reference: dict, reference_thumbnails: Path) -> None:
    """Two full builds of one folder: the same ids and skipped files too, and thumbnail files byte for byte."""
    assert_same_index(index, reference)
    assert [p["id"] for p in index.photos] == [p["id"] for p in reference.photos]
    assert index.next_id == reference.next_id
    assert index.skipped == reference.skipped
    names = sorted(p.name for p in thumbnails.iterdir())
    assert names == sorted(p.name for p in reference_thumbnails.iterdir())
    for name in names:
        assert (thumbnails / name).read_bytes() == (reference_thumbnails / name).read_bytes(), name
