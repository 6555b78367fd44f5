"""`python -m tools.duplicates INDEX`: list the duplicate groups, or move all but each group's keep aside.

    python -m tools.duplicates INDEX [--kind same-picture|similar-shots [--threshold T]] [--format csv|json]
                                     [--move-to DIR] [--dry-run]

The groups and the suggested keep are those of the web app's /duplicates
page (`core.duplicate_groups`). By default the groups are "same picture":
copies of one photo, each pair verified on local features and thumbnails
when the index was built. `--kind similar-shots` gives the groups of photos
at least `--threshold` alike instead (bursts, re-takes: not copies); moving
those is asked for only by naming that kind. An index built without the
evidence offers similar shots only, and says so. Listing writes one CSV row
per photo, or one JSON document, streamed group by group (in CSV, a text
cell that begins like a formula gets a leading apostrophe). `--move-to DIR` moves every photo
but the suggested keep of its group to the same relative path under DIR
(`tools.duplicate_moves`: each file moved whole or left untouched); it
never deletes anything, and `--dry-run` prints the moves without making them.
A name with a line break or other control character is printed quoted and
escaped, so every line of the output is what it says.
The index itself is not changed: run `python -m precompute` again afterwards.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from core.duplicate_groups import (
    DEFAULT_THRESHOLD, GROUP_KINDS, KEEP_RULE, KIND_NAMES, MAX_THRESHOLD, MIN_THRESHOLD, NO_EVIDENCE, SAME_PICTURE,
    SIMILAR_SHOTS, DuplicateGroups, find_groups, has_same_picture, photo_facts, same_picture_groups,
)
from core.index_file import IndexFileError, PhotoTable, read_index
from precompute.command_line import (
    EXIT_ERROR, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, OneLineErrorParser, number_from,
    sigterm_as_interrupt,
)
from tools.duplicate_moves import Move, MoveRefused, Outcome, move_photo
from tools.spreadsheet_cells import safe_cell

CSV_FIELDS = ("group", "suggested_keep", "id", "path", "width", "height", "size", "exif_tags", "taken", "taken_source")
_GROUPS_AT_ONCE = 1024  # photo dicts are made this many groups at a time, so a million photos stream
_UNSAFE_IN_A_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # control characters and line separators


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineErrorParser(
        prog="python -m tools.duplicates",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
        epilog=f"The suggested keep of a group is {KEEP_RULE}. Exit status: {EXIT_OK} done, {EXIT_INCOMPLETE} some "
        f"photos not moved (each listed; untouched), {EXIT_ERROR} nothing done (unreadable index, unusable DIR), "
        f"{EXIT_USAGE} bad option, {EXIT_INTERRUPTED} interrupted (every file moved whole or untouched).",
    )
    parser.add_argument("index", type=Path, help="index file written by python -m precompute")
    parser.add_argument("--kind", choices=GROUP_KINDS, default=SAME_PICTURE,
                        help="same-picture: verified copies of one photo; similar-shots: photos at least --threshold "
                        "alike (default: %(default)s)")
    parser.add_argument("--threshold", type=number_from(MIN_THRESHOLD, MAX_THRESHOLD),
                        help=f"with --kind {SIMILAR_SHOTS}: similarity at which photos join (default: {DEFAULT_THRESHOLD}, "
                        "see docs/quality.md)")
    parser.add_argument("--format", choices=("csv", "json"), default="csv", help="listing format (default: %(default)s)")
    parser.add_argument("--move-to", type=Path, metavar="DIR",
                        help="move every photo but each group's suggested keep into DIR, keeping relative paths")
    parser.add_argument("--dry-run", action="store_true", help="with --move-to: print the moves, make none")
    parser.add_argument("--photo-root", type=Path, metavar="FOLDER",
                        help="where the photos are, if not where the index recorded them")
    args = parser.parse_args(argv)
    if args.dry_run and args.move_to is None:
        parser.error("--dry-run needs --move-to DIR")
    if args.threshold is not None and args.kind != SIMILAR_SHOTS:
        parser.error(f"--threshold applies to similar shots: add --kind {SIMILAR_SHOTS}")
    if args.kind == SIMILAR_SHOTS and args.threshold is None:
        args.threshold = DEFAULT_THRESHOLD
    return args


def group_records(groups: DuplicateGroups, photos: PhotoTable) -> Iterator[tuple[int, list[dict]]]:
    """(group number from 1, its photo dicts, the suggested keep first), a batch of groups at a time."""
    for start in range(0, len(groups), _GROUPS_AT_ONCE):
        batch = groups.groups(start, start + _GROUPS_AT_ONCE)
        records = iter(photos.records([int(row) for rows in batch for row in rows]) if batch else [])
        for number, rows in enumerate(batch, start + 1):
            yield number, [next(records) for _ in rows]


def write_csv(groups: DuplicateGroups, photos: PhotoTable, out: TextIO) -> None:
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for number, records in group_records(groups, photos):
        for position, photo in enumerate(records):
            listed = _listed(photo)
            writer.writerow((number, "yes" if position == 0 else "no", *(safe_cell(listed[field]) for field in CSV_FIELDS[2:])))


def shown(text: str) -> str:
    """A file name (or a message holding one) for a line of output: with a line break or other control character,
    or a quote first, it is quoted and escaped as Python writes strings, so it cannot forge a line of its own."""
    return repr(text) if _UNSAFE_IN_A_LINE.search(text) or text[:1] in "'\"" else text


def write_json(groups: DuplicateGroups, photos: PhotoTable, out: TextIO) -> None:
    head = {"kind": groups.kind, "threshold": groups.threshold, "keep_rule": KEEP_RULE, "groups_total": len(groups), "photos_total": groups.photos,
            "photos_with_full_lists": groups.crowded}
    out.write(json.dumps(head)[:-1] + ', "groups": [')
    for number, records in group_records(groups, photos):
        group = [{**_listed(photo), "suggested_keep": position == 0} for position, photo in enumerate(records)]
        out.write(("\n" if number == 1 else ",\n") + json.dumps(group))
    out.write("]}\n")


def _listed(photo: dict) -> dict:
    return {"id": photo["id"], "path": photo["path"], **photo_facts(photo)}


def describe(groups: DuplicateGroups) -> str:
    if groups.threshold is None:
        return f"{KIND_NAMES[SAME_PICTURE]}: copies verified on local features and thumbnails"
    return f"{KIND_NAMES[SIMILAR_SHOTS]}: similarity ≥ {groups.threshold}"


def planned_moves(groups: DuplicateGroups, photos: PhotoTable) -> Iterator[Move]:
    for _, records in group_records(groups, photos):
        for photo in records[1:]:
            yield Move(photo["path"], photo["size"], photo["mtime_ns"])


def destination_problem(destination: Path, photo_root: Path) -> str | None:
    """Why DIR cannot take the moved photos, or None."""
    resolved = destination.resolve()
    if resolved == photo_root.resolve() or resolved.is_relative_to(photo_root.resolve()):
        return (f"{destination} is inside the photo folder {photo_root}; the next index run would index the moved "
                "photos again: choose a folder outside it")
    if destination.exists() and not destination.is_dir():
        return f"{destination} is not a folder"
    return None


def move_all(moves: Iterator[Move], photo_root: Path, destination: Path, out: TextIO, outcomes: list[Outcome]) -> None:
    """Make each move, adding its outcome to `outcomes` and printing it as it is made: an interruption loses none."""
    for move in moves:
        try:
            note = move_photo(move, photo_root, destination)
            outcomes.append(Outcome(move, True, note))
            print(f"moved {shown(move.path)}" + (f" ({shown(note)})" if note else ""), file=out, flush=True)
        except MoveRefused as refused:
            outcomes.append(Outcome(move, False, str(refused)))
            print(f"not moved {shown(move.path)}: {shown(str(refused))}", file=out, flush=True)


def summary(outcomes: list[Outcome], destination: Path, interrupted: bool) -> list[str]:
    moved = [o for o in outcomes if o.moved and not o.problem]
    copied = [o for o in outcomes if o.moved and o.problem]
    refused = [o for o in outcomes if not o.moved]
    lines = [f"Moved {len(moved)} photos ({sum(o.move.size for o in moved) / 1e6:.1f} MB) to {destination}."]
    if copied:
        lines.append(f"Copied whole but the original left in place: {len(copied)}:")
        lines += [f"  {shown(o.move.path)}: {shown(o.problem)}" for o in copied]
    if refused:
        lines.append(f"Not moved, left untouched: {len(refused)}:")
        lines += [f"  {shown(o.move.path)}: {shown(o.problem)}" for o in refused]
    if interrupted:
        lines.append("Interrupted: every file above was moved whole; the rest were not touched.")
    if moved or copied:
        lines.append("The index still lists the moved photos: run python -m precompute PHOTOS --out INDEX again.")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        index = read_index(args.index)
    except IndexFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    if args.kind == SAME_PICTURE and not has_same_picture(index):
        print(f"error: {args.index}: {NO_EVIDENCE}; --kind {SIMILAR_SHOTS} lists those", file=sys.stderr)
        return EXIT_ERROR
    if args.kind == SAME_PICTURE:
        groups = same_picture_groups(index.same_picture, index.photos, index.different_picture)
    else:
        groups = find_groups(index.neighbours, index.scores, index.photos, args.threshold)
    out = sys.stdout
    out.reconfigure(errors="surrogateescape")  # a file name that is not UTF-8 is written back as it was
    if groups.crowded:
        print(f"note: {groups.crowded} photos have all {index.k} stored similar photos at or above "
              f"{args.threshold}, so they may have more copies than the index lists; index with a larger --k to find them",
              file=sys.stderr)
    if args.move_to is None:
        (write_json if args.format == "json" else write_csv)(groups, index.photos, out)
        return EXIT_OK
    photo_root = args.photo_root or Path(index.photo_root)
    problem = destination_problem(args.move_to, photo_root)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    print(f"{len(groups)} groups of {groups.photos} photos ({describe(groups)}); keeping {KEEP_RULE}.", file=out)
    if args.dry_run:
        for move in planned_moves(groups, index.photos):
            print(f"would move {shown(str(photo_root / move.path))} -> {shown(str(args.move_to / move.path))}", file=out)
        return EXIT_OK
    outcomes: list[Outcome] = []
    interrupted = False
    try:
        with sigterm_as_interrupt():
            move_all(planned_moves(groups, index.photos), photo_root, args.move_to, out, outcomes)
    except KeyboardInterrupt:
        interrupted = True
    print("\n".join(summary(outcomes, args.move_to, interrupted)), file=out)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_INCOMPLETE if any(not o.moved or o.problem for o in outcomes) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
