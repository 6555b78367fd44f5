"""The evaluation protocol: the fixed scene split, paired bootstrap intervals, and the category table."""

from pathlib import Path

import numpy as np
import pytest

from tools.evaluate.categories import CATEGORIES, OTHER, TABLE, category_of, derive_table, read_table, wnid_of
from tools.evaluate.metrics import average_precisions, recall_of_originals
from tools.evaluate.protocol import half_of_scene, paired_bootstrap, split_by_scene


def test_split_is_by_scene_fixed_and_disjoint():
    scenes = np.array([1000, 1000, 1001, 1002, 1002, 1002, 1003, 1149])
    halves = split_by_scene(scenes)
    assert halves["tune"].tolist() == [0, 1, 3, 4, 5]  # the even scenes, by a rule, not by chance
    assert halves["confirm"].tolist() == [2, 6, 7]
    assert split_by_scene(scenes[::-1])["tune"].tolist() == [2, 3, 4, 6, 7]  # each photo follows its scene
    assert [half_of_scene(s) for s in (1148, 1149)] == ["tune", "confirm"]


def test_holidays_dev_halves_are_disjoint_by_scene_and_cover_every_photo(holidays_dir):
    ids = np.array(sorted(int(p.stem) for p in holidays_dir.glob("*.jpg")))
    halves = split_by_scene(ids // 100)
    tune, confirm = (set((ids[rows] // 100).tolist()) for rows in halves.values())
    assert not tune & confirm
    assert sorted(np.concatenate(list(halves.values())).tolist()) == list(range(len(ids)))
    queries = {half: int((ids[rows] % 100 == 0).sum()) for half, rows in halves.items()}
    assert (len(tune), len(confirm), queries) == (75, 75, {"tune": 75, "confirm": 72})


def test_bootstrap_pairs_the_queries():
    rng = np.random.default_rng(3)
    baseline = rng.uniform(0.0, 1.0, 80)  # queries range from hard to easy
    candidate = np.clip(baseline + 0.02, 0, 1)  # the same queries, each a little better
    paired = paired_bootstrap(candidate, baseline)
    assert paired.above_zero and paired.low > 0.015 and paired.better > 70 and paired.worse == 0
    # The same scores with the pairing lost: the spread between queries swamps the gain.
    unpaired = paired_bootstrap(rng.permutation(candidate), baseline)
    assert not unpaired.above_zero and unpaired.high - unpaired.low > 10 * (paired.high - paired.low)


def test_bootstrap_is_seeded_and_refuses_unpaired_shapes():
    rng = np.random.default_rng(4)
    a, b = rng.uniform(size=50), rng.uniform(size=50)
    assert paired_bootstrap(a, b) == paired_bootstrap(a, b)
    assert paired_bootstrap(a, b, seed=1) != paired_bootstrap(a, b)
    with pytest.raises(ValueError, match="one score per query"):
        paired_bootstrap(a, b[:49])


def test_average_precision_at_k_counts_only_the_first_k_ranks():
    embeddings = np.array([[1, 0], [0.9, 0.1], [0.8, 0.2], [0, 1], [0.7, 0.3]], dtype=np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    groups = np.array([0, 0, 1, 1, 0])  # row 0's group-mates rank 1st and 3rd
    np.testing.assert_allclose(average_precisions(embeddings, groups, np.array([0])), [(1 + 2 / 3) / 2])
    np.testing.assert_allclose(average_precisions(embeddings, groups, np.array([0]), k=2), [1 / 2])
    np.testing.assert_allclose(average_precisions(embeddings, groups, np.array([0]), k=1), [1.0])


def test_category_table_covers_every_class_once():
    table = read_table()
    assert len(table) == 1000
    assert all(wnid.startswith("n") and len(wnid) == 9 for wnid in table)
    names = {category for category, _ in CATEGORIES} | {OTHER}
    counts = {}
    for _, category in table.values():
        counts[category] = counts.get(category, 0) + 1
    assert set(counts) <= names
    assert counts["dogs"] == 118 and counts[OTHER] < 20  # ImageNet's 118 dog breeds; few classes left over
    assert table["n04344873"] == ("studio_couch", "furniture") and table["n01440764"] == ("tench", "fish")


def test_every_imagenet_sample_has_a_category(imagenet_dir):
    table = read_table()
    wnids = {wnid_of(path.name) for path in imagenet_dir.iterdir()}
    assert len(wnids) == 1000 and wnids == set(table)


def test_category_rule_takes_the_first_listed_ancestor(tmp_path):
    """A fruit that WordNet files under both food and plant is food, the earlier of the two."""
    lines = [
        "  1 This software and database is being provided ...",  # WordNet's licence header
        "00021265 03 n 01 food 0 000 | ...",
        "00017222 03 n 01 plant 0 000 | ...",
        "07000001 13 n 01 fig 0 002 @ 00021265 n 0000 @ 07000002 n 0000 | ...",
        "07000002 20 n 01 fig_tree_part 0 001 @ 00017222 n 0000 | ...",
        "09000001 17 n 01 rock 0 000 | ...",
    ]
    data_noun = tmp_path / "data.noun"
    data_noun.write_text("\n".join(lines) + "\n", encoding="latin-1")
    rows = derive_table(data_noun, ["n09000001_rock.JPEG", "n07000001_fig.JPEG", "n07000002_fig_tree_part.JPEG"])
    assert rows == [("n07000001", "fig", "food"), ("n07000002", "fig_tree_part", "plants and fungi"),
                    ("n09000001", "rock", OTHER)]
    with pytest.raises(ValueError, match="not a noun"):
        derive_table(data_noun, ["n05555555_unknown.JPEG"])


def test_table_says_where_it_came_from():
    header = Path(TABLE).read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("#") and "WordNet 3.0" in header
    assert category_of("00021265", {}) == "food"


def test_a_reorder_ranks_what_the_measures_score():
    """Re-ranked configurations are measured on the re-ranked lists (`--rerank`), not on the cosines alone."""
    embeddings = np.array([[1, 0], [0.9, 0.1], [0.8, 0.2], [0, 1], [0.7, 0.3]], dtype=np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    groups = np.array([0, 0, 1, 1, 0])  # by cosine, row 0 ranks 1, 2, 4, 3
    seen = []

    def swap_first_two(queries, order, cosines):
        seen.append((queries.tolist(), order.tolist(), np.all(np.diff(cosines, axis=1) <= 0)))
        return order[:, [1, 0, *range(2, order.shape[1])]]

    np.testing.assert_allclose(average_precisions(embeddings, groups, np.array([0]), reorder=swap_first_two), [(1 / 2 + 2 / 3) / 2])
    assert seen == [([0], [[1, 2, 4, 3]], True)]
    assert recall_of_originals(embeddings, np.array([0]), np.array([1]), k=1) == (1.0, 1.0)
    assert recall_of_originals(embeddings, np.array([0]), np.array([1]), k=1, reorder=swap_first_two) == (0.0, 0.0)
