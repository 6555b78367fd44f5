"""Duplicate groups from the stored neighbour lists: components, their order, the keep rule, the top-k limit."""

import numpy as np
import pytest

from core.duplicate_groups import ambiguous_photos, connected_components, find_groups, same_picture_groups
from core.index_file import PhotoTable
from tests.support.index_samples import photo_record


def _components_by_search(n: int, first: np.ndarray, second: np.ndarray) -> list[set[int]]:
    """The reference: breadth-first search over an adjacency list."""
    adjacent = [set() for _ in range(n)]
    for a, b in zip(first.tolist(), second.tolist()):
        adjacent[a].add(b)
        adjacent[b].add(a)
    seen, components = set(), []
    for start in range(n):
        if start in seen:
            continue
        component, frontier = {start}, [start]
        while frontier:
            frontier = [b for a in frontier for b in adjacent[a] if b not in component]
            component.update(frontier)
        seen |= component
        components.append(component)
    return components


@pytest.mark.parametrize("seed", range(20))
def test_components_match_a_graph_search(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200))
    edges = int(rng.integers(0, 2 * n))
    first, second = rng.integers(0, n, edges), rng.integers(0, n, edges)
    labels = connected_components(n, first, second)
    for component in _components_by_search(n, first, second):
        assert {int(labels[row]) for row in component} == {min(component)}  # one label, the smallest row


def test_a_long_chain_in_shuffled_order_is_one_component():
    order = np.random.default_rng(0).permutation(5000)
    labels = connected_components(5000, order[:-1], order[1:])
    assert np.all(labels == 0)


def _table(dimensions: list[tuple[int, int]], sizes: list[int], ids: list[int] | None = None) -> PhotoTable:
    records = []
    for row, ((width, height), size) in enumerate(zip(dimensions, sizes)):
        record = photo_record(ids[row] if ids else row)
        records.append({**record, "width": width, "height": height, "size": size})
    return PhotoTable.from_records(records)


def test_groups_are_largest_first_then_by_lowest_id_and_keep_first():
    # rows 0-1 a pair, rows 2-4 a triple joined as a chain (2-3, 3-4), row 5 alone, rows 6-7 a pair.
    neighbours = np.array([[1, 5], [0, 5], [3, 5], [4, 2], [3, 5], [0, 1], [7, 0], [6, 0]], np.int32)
    scores = np.array([[0.95, 0.1], [0.95, 0.1], [0.92, 0.1], [0.93, 0.92], [0.93, 0.1], [0.2, 0.1], [0.99, 0.1], [0.99, 0.1]],
                      np.float32)
    photos = _table([(100, 100), (200, 100), (100, 100), (100, 100), (100, 100), (900, 900), (50, 50), (50, 50)],
                    [10, 10, 10, 30, 20, 10, 5, 6], ids=[40, 41, 42, 43, 44, 45, 7, 8])
    groups = find_groups(neighbours, scores, photos, 0.9)
    assert [groups.group(g).tolist() for g in range(len(groups))] == [[3, 4, 2], [7, 6], [1, 0]]
    assert (len(groups), groups.photos, groups.crowded) == (3, 7, 1)  # row 3 has both of its neighbours above 0.9
    assert [rows.tolist() for rows in groups.groups(1, 99)] == [[7, 6], [1, 0]]


def test_the_threshold_itself_joins_and_just_below_it_does_not():
    neighbours = np.array([[1], [0]], np.int32)
    photos = _table([(10, 10), (10, 10)], [1, 1])
    assert len(find_groups(neighbours, np.full((2, 1), 0.8, np.float32), photos, 0.8)) == 1
    assert len(find_groups(neighbours, np.full((2, 1), 0.79, np.float32), photos, 0.8)) == 0


def test_keep_rule_resolution_then_file_size_then_lowest_id():
    neighbours = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]], np.int32)
    scores = np.full((4, 3), 0.99, np.float32)
    # Rows 0, 2 and 3 have 810,000 pixels, row 1 800,000 but by far the largest file: resolution comes first,
    # then among equal resolutions the larger file.
    photos = _table([(900, 900), (1000, 800), (1000, 810), (810, 1000)], [700, 5000, 500, 900])
    assert find_groups(neighbours, scores, photos, 0.9).group(0).tolist() == [3, 0, 2, 1]
    ties = _table([(10, 10)] * 4, [5] * 4, ids=[9, 3, 7, 5])
    assert find_groups(neighbours, scores, ties, 0.9).group(0).tolist() == [1, 3, 2, 0]  # all equal: lowest id first


def test_pairs_beyond_the_stored_lists_are_joined_only_through_others():
    # Four copies of one photo, k = 2: row 0 lists 1 and 2 only, row 3 lists 2 and 1 only, yet 0 and 3 share
    # a group through 1 and 2, and every row reports a list full at the threshold (`crowded`).
    neighbours = np.array([[1, 2], [0, 2], [1, 3], [2, 1]], np.int32)
    scores = np.full((4, 2), 0.97, np.float32)
    groups = find_groups(neighbours, scores, _table([(10, 10)] * 4, [1, 2, 3, 4]), 0.9)
    assert sorted(groups.group(0).tolist()) == [0, 1, 2, 3] and groups.crowded == 4


def test_an_index_without_neighbours_has_no_groups():
    groups = find_groups(np.zeros((1, 0), np.int32), np.zeros((1, 0), np.float32), _table([(10, 10)], [1]), 0.9)
    assert len(groups) == 0 and groups.groups(0, 20) == []


def test_a_photo_that_is_one_picture_with_two_different_pictures_is_left_out():
    # 0 and 1 two shots of one scene (verified different); 2 a small copy that matched both; 3 a copy of 0;
    # 4 and 5 two copies of 6 that do not match each other closely enough to tell (neither same nor different).
    photos = _table([(100, 100)] * 7, [10] * 7)
    same = np.array([[0, 2], [1, 2], [0, 3], [2, 3], [4, 6], [5, 6]], np.int32)
    different = np.array([[0, 1]], np.int32)
    assert ambiguous_photos(same, different).tolist() == [2]
    groups = same_picture_groups(same, photos, different)
    assert sorted(sorted(groups.group(g).tolist()) for g in range(len(groups))) == [[0, 3], [4, 5, 6]]
    without = same_picture_groups(same, photos)  # an index from before the different pairs were stored
    assert sorted(sorted(without.group(g).tolist()) for g in range(len(without))) == [[0, 1, 2, 3], [4, 5, 6]]
    assert ambiguous_photos(same[:0], different).size == 0 and ambiguous_photos(same, different[:0]).size == 0
