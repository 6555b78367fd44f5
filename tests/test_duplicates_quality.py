"""On real photos: which edited copies the default threshold groups with their originals, and the keep rule.

The collection is the first 240 imagenet-samples photos and 48 seeded edited
copies of them (six of each edit), as `python -m tools.evaluate` makes
them. The bars follow what the evaluation measured at the default threshold
(docs/quality.md: every flipped, EXIF-rotated and brightness-changed copy,
most captioned ones, few cropped, grayscale or downscaled ones), a little
below it, so a broken grouping or threshold fails loudly.
"""

from collections import Counter

import pytest

from core.duplicate_groups import DEFAULT_THRESHOLD, find_groups
from core.index_file import read_index

ALWAYS_FOUND = ("flip", "exif-rotation", "brightness-contrast")  # 25 of 25, 25 and 24 in the evaluation


def _grouping(index: dict, threshold: float) -> tuple[dict[str, int], list[list[dict]]]:
    """({path: group number}, each group's photo dicts in the groups' own order)."""
    groups = find_groups(index.neighbours, index.scores, index.photos, threshold)
    members = [index.photos.records(groups.group(number).tolist()) for number in range(len(groups))]
    return {photo["path"]: number for number, group in enumerate(members) for photo in group}, members


def _found(group_of: dict[str, int], made: dict) -> Counter:
    """Copies sharing a group with their original, per edit."""
    return Counter(kind for copy, (original, kind) in made.items()
                   if group_of.get(f"copies/{copy}", -1) == group_of.get(f"originals/{original}", -2))


def test_the_default_groups_contain_the_copies_its_threshold_was_chosen_to_find(near_duplicate_index):
    index_path, made = near_duplicate_index
    group_of, groups = _grouping(read_index(index_path), DEFAULT_THRESHOLD)
    found, per_kind = _found(group_of, made), Counter(kind for _, kind in made.values())
    print(f"copies grouped with their original at {DEFAULT_THRESHOLD}: {dict(found)} of {dict(per_kind)}")
    for kind in ALWAYS_FOUND:
        assert found[kind] >= per_kind[kind] - 1, kind
    assert sum(found.values()) >= 0.4 * len(made)
    originals = {f"copies/{copy}": f"originals/{original}" for copy, (original, _) in made.items()}
    for group in groups:  # no group without a copy and its original: these originals are one per class
        paths = {photo["path"] for photo in group}
        assert any(originals.get(path) in paths for path in paths), paths


@pytest.mark.parametrize("threshold", [DEFAULT_THRESHOLD, 0.6])
def test_every_suggested_keep_follows_the_rule(near_duplicate_index, threshold):
    """Most pixels, then the largest file, then the most EXIF tags, then the lowest id: checked on each group."""
    index_path, _ = near_duplicate_index
    _, groups = _grouping(read_index(index_path), threshold)
    assert groups
    for group in groups:
        ranked = sorted(group, key=lambda p: (-p["width"] * p["height"], -p["size"], -(p["exif_tags"] or 0), p["id"]))
        assert [p["id"] for p in group] == [p["id"] for p in ranked]


def test_the_original_is_kept_over_its_downscaled_and_recompressed_copies(near_duplicate_index):
    """At 0.6, where downscaled copies join their originals too: fewer pixels, or as many in a smaller file, lose."""
    index_path, made = near_duplicate_index
    group_of, groups = _grouping(read_index(index_path), 0.6)
    checked = 0
    for copy, (original, kind) in made.items():
        if kind in ("downscale", "jpeg") and group_of.get(f"copies/{copy}", -1) == group_of.get(f"originals/{original}"):
            assert groups[group_of[f"copies/{copy}"]][0]["path"] == f"originals/{original}", (copy, kind)
            checked += 1
    assert checked >= 9  # of 12
