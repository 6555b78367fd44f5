"""Reuse the previous index: embed only the photos that are new or changed since it was built.

A photo is unchanged when its relative path, size and modification time
match what the previous index recorded. Where only the modification time
differs (a copy, a `touch`, a restore from backup), the content hash decides.
Unchanged photos keep their id, so bookmarked URLs keep working; photos that
are new get ids above any id used before.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.index_file import Index, IndexFileError, ModelInfo, read_index
from precompute.models import LoadedModel
from precompute.neighbours.lists import PreviousLists
from precompute.photo_metadata import photo_fields, recorded_summary, summary_from_file
from precompute.scan import PhotoFile


@dataclass
class Previous:
    """The reusable part of an earlier index, or why there is none."""

    photos: dict[str, tuple[dict, np.ndarray]]  # relpath -> (photo info, embedding), in the index's row order
    next_id: int
    rebuild_reason: str | None = None  # set when an index existed but cannot be reused
    index: Index | None = None  # the previous index itself, for its neighbour lists


def load_previous(index_path: Path, photo_dir: Path, model: LoadedModel) -> Previous:
    """What can be reused from the index at `index_path` for `photo_dir` embedded with `model`."""
    if not index_path.exists():
        return Previous({}, 0)
    try:
        index = read_index(index_path, upgrade=True)  # an index of an older format is read and rewritten
    except IndexFileError as err:
        return Previous({}, 0, f"the existing index cannot be read ({err})")
    reason = _incompatibility(index, photo_dir, model)
    if reason:
        return Previous({}, 0, reason)
    photos = {info["path"]: (info, row) for info, row in zip(index.photos, index.embeddings)}
    if len(photos) != len(index.photos):
        return Previous({}, 0, "the existing index lists a photo twice")
    return Previous(photos, index.next_id, index=index)


def _incompatibility(index: Index, photo_dir: Path, model: LoadedModel) -> str | None:
    mismatch = index.model.mismatch(ModelInfo.from_dict(model.describe()))
    if mismatch:
        return f"the existing index was built with a different model ({mismatch})"
    if index.embeddings.shape != (len(index.photos), model.dim):
        return f"the existing index's embeddings do not fit {len(index.photos)} photos × {model.dim} dimensions"
    if index.photo_root != str(photo_dir):
        return f"the existing index was built from another folder ({index.photo_root})"
    return None


@dataclass
class Plan:
    """Which photos to reuse and which to embed, in the scan's order."""

    reused: dict[str, tuple[dict, np.ndarray]] = field(default_factory=dict)  # relpath -> (info, embedding)
    to_embed: list[PhotoFile] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # relpaths of to_embed that the previous index had
    rehashed: int = 0  # photos whose modification time changed but whose content did not
    reused_files: dict[str, PhotoFile] = field(default_factory=dict)  # relpath -> the file, of each reused photo
    embedded_again: int = 0  # reused photos embedded again all the same, to extract their missing evidence


def plan_update(photos: list[PhotoFile], previous: Previous, thumbnail_dir: Path) -> Plan:
    """Reuse each photo the previous index has unchanged, with its thumbnails still on disk."""
    plan = Plan()
    for photo in photos:
        entry = previous.photos.get(photo.relpath)
        if entry is None:
            plan.to_embed.append(photo)
            continue
        info, embedding = entry
        if _unchanged(photo, info) and _thumbnails_exist(info, thumbnail_dir):
            # The recorded EXIF summary, or, from an index older than it, the file header's; the file time as it is now.
            summary = recorded_summary(info) or summary_from_file(photo.path)
            plan.reused[photo.relpath] = ({**info, "mtime_ns": photo.mtime_ns, **photo_fields(summary, photo.mtime_ns)}, embedding)
            plan.rehashed += photo.mtime_ns != info.get("mtime_ns")
            plan.reused_files[photo.relpath] = photo
        else:
            plan.to_embed.append(photo)
            plan.changed.add(photo.relpath)
    return plan


def embed_again(plan: Plan, relpaths: list[str]) -> None:
    """Move reused photos back into `to_embed` (their evidence is missing); they keep their ids and count as neither added nor changed."""
    for relpath in relpaths:
        plan.reused.pop(relpath)
        plan.to_embed.append(plan.reused_files.pop(relpath))
    plan.embedded_again += len(relpaths)


def _unchanged(photo: PhotoFile, info: dict) -> bool:
    if photo.size != info.get("size"):
        return False
    if photo.mtime_ns == info.get("mtime_ns"):
        return True
    try:
        return hashlib.sha1(photo.path.read_bytes()).hexdigest() == info.get("sha1")
    except OSError:
        return False  # embedding it will report why it cannot be read


def _thumbnails_exist(info: dict, thumbnail_dir: Path) -> bool:
    return all((thumbnail_dir / thumb["file"]).is_file() for thumb in info["thumbnails"].values())


@dataclass
class Merged:
    infos: list[dict]  # sorted by relative path, each with its id
    embeddings: np.ndarray
    next_id: int
    added: int  # photos the previous index did not have
    changed: int  # photos embedded again because their content changed
    removed: int  # photos of the previous index that are not in this one


def merge(plan: Plan, previous: Previous, new_infos: list[dict], new_embeddings: np.ndarray) -> Merged:
    """Reused and newly embedded photos together, in path order, with stable ids."""
    rows = dict(plan.reused)
    rows.update((info["path"], (info, embedding)) for info, embedding in zip(new_infos, new_embeddings))
    next_id = previous.next_id
    infos, embeddings = [], []
    for relpath in sorted(rows):
        info, embedding = rows[relpath]
        old = previous.photos.get(relpath)
        if old is not None:
            info["id"] = old[0]["id"]  # a changed photo keeps its id too: same path, same URL
        else:
            info["id"] = next_id
            next_id += 1
        infos.append(info)
        embeddings.append(embedding)
    changed = sum(1 for info in new_infos if info["path"] in plan.changed)
    dim = new_embeddings.shape[1]
    return Merged(
        infos,
        np.stack(embeddings).astype(np.float32) if embeddings else np.zeros((0, dim), np.float32),
        next_id,
        added=sum(1 for info in new_infos if info["path"] not in previous.photos),
        changed=changed,
        removed=sum(1 for relpath in previous.photos if relpath not in rows),
    )


def previous_lists(previous: Previous, plan: Plan, merged: Merged,
                   candidates: tuple[np.ndarray, np.ndarray] | None = None) -> PreviousLists | None:
    """The previous index's neighbour lists, with its rows mapped to this run's (-1: removed or changed).

    `candidates`: the lists its neighbour search gave before re-ranking (the pairs file), when it re-ranked.
    """
    index = previous.index
    if index is None:
        return None
    new_rows = {info["path"]: row for row, info in enumerate(merged.infos) if info["path"] in plan.reused}
    new_row = np.array([new_rows.get(path, -1) for path in previous.photos], dtype=np.int64)  # old row order
    neighbours, scores = candidates or (index.neighbours, index.scores)
    return PreviousLists(
        new_row,
        neighbours,
        scores,
        index.expansion,
        query_expansion=index.model.query_expansion,
        method=index.model.neighbours,
    )
