"""`python -m tools.export INDEX --format csv|jsonl [--k N] [--min-score S] [--out FILE]`: the similar lists as a table.

One row per (photo, rank, similar photo, score): the item-item recommendation
table a shop or a data pipeline imports. Columns: photo_id, photo_path, rank
(from 1, best first), similar_id, similar_path, score (the stored cosine, 6
decimals). Paths are relative to the photo folder; in CSV a path that begins
like a formula (`=`, `+`, `-`, `@`, tab, CR) gets a leading apostrophe, so a
spreadsheet shows it rather than runs it (JSON Lines keeps every path exact).

It streams: the index's arrays are memory-mapped, and rows are made and
written CHUNK_PHOTOS photos at a time, each chunk's columns cut with numpy
(the first k ranks, the score filter), so a million photos never have their
rows in memory. Output is UTF-8 text with `\\n` line ends, to stdout or,
with --out, to a temporary file renamed over FILE when complete: an
interrupted export leaves FILE as it was.

A path that is not valid UTF-8 on disk (the index keeps its bytes) is written
with U+FFFD in place of its undecodable bytes, as the web pages show it, so the output
is always valid UTF-8; the ids stay exact for joins, and stderr says how many
such paths there were.

Exit status: 0 written; 1 the index cannot be read, or the output cannot be
written (one line on stderr, nothing left behind); 2 bad option; 130
interrupted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from core.atomic_write import atomic_file
from core.index_file import Index, IndexFileError, PhotoTable, read_index
from precompute.command_line import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, number_from
from tools.spreadsheet_cells import safe_cell

FORMATS = ("csv", "jsonl")
COLUMNS = ("photo_id", "photo_path", "rank", "similar_id", "similar_path", "score")
CHUNK_PHOTOS = 1024  # photos per chunk: about 10,000 rows at k = 10


@dataclass
class Exported:
    rows: int = 0
    photos: int = 0
    undecodable: set[int] = field(default_factory=set)  # rows whose path was written with U+FFFD (rare: kept all)


def export(index: Index, out: TextIO, fmt: str, k: int | None = None, min_score: float | None = None) -> Exported:
    """Write the similar lists of `index` to `out`, chunk by chunk; `k` (≤ the stored k) cuts each list, `min_score` filters."""
    photos: PhotoTable = index.photos
    neighbours, scores = index.neighbours, index.scores
    k = neighbours.shape[1] if k is None else k
    write = _csv_writer(out) if fmt == "csv" else _jsonl_writer(out)
    done = Exported(photos=len(photos))
    for start in range(0, len(photos), CHUNK_PHOTOS):
        stop = min(len(photos), start + CHUNK_PHOTOS)
        chunk_scores = scores[start:stop, :k]
        keep = np.ones(chunk_scores.shape, bool) if min_score is None else chunk_scores >= min_score
        rows, ranks = np.nonzero(keep)
        photo_rows, similar_rows = rows + start, neighbours[start:stop, :k][keep]
        paths = _paths(photos, np.union1d(photo_rows, similar_rows), done.undecodable)
        if fmt == "csv":  # once per photo in the chunk, not per cell: no path is run as a spreadsheet formula
            paths = {row: safe_cell(path) for row, path in paths.items()}
        write(photos.ids[photo_rows].tolist(), [paths[row] for row in photo_rows.tolist()], (ranks + 1).tolist(),
              photos.ids[similar_rows].tolist(), [paths[row] for row in similar_rows.tolist()],
              [f"{score:.6f}" for score in chunk_scores[keep].tolist()])
        done.rows += len(rows)
    return done


def _paths(photos: PhotoTable, rows: np.ndarray, undecodable: set[int]) -> dict[int, str]:
    """{row: path as UTF-8 text} for one chunk's photos; adds to `undecodable` the rows whose path was not valid UTF-8."""
    paths = dict(zip(rows.tolist(), photos.display_paths(rows)))
    for row, text in paths.items():
        if "\ufffd" in text and photos.path(row) != text:  # not a name that holds U+FFFD itself
            undecodable.add(row)
    return paths


def _csv_writer(out: TextIO):
    writer = csv.writer(out, lineterminator="\n")
    # Python before 3.11.9 (gh-67044) leaves a lone CR unquoted when the line end is "\n", and readers end the row
    # there: a chunk with a CR in a path is written with every cell quoted.
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(COLUMNS)

    def write(photo_ids, photo_paths, ranks, similar_ids, similar_paths, scores) -> None:
        has_cr = "\r" in "".join(photo_paths) or "\r" in "".join(similar_paths)
        (quoted if has_cr else writer).writerows(zip(photo_ids, photo_paths, ranks, similar_ids, similar_paths, scores))

    return write


def _jsonl_writer(out: TextIO):
    def write(photo_ids, photo_paths, ranks, similar_ids, similar_paths, scores) -> None:
        out.writelines(
            f'{{"photo_id": {photo_id}, "photo_path": {json.dumps(photo_path, ensure_ascii=False)}, "rank": {rank}, '
            f'"similar_id": {similar_id}, "similar_path": {json.dumps(similar_path, ensure_ascii=False)}, "score": {score}}}\n'
            for photo_id, photo_path, rank, similar_id, similar_path, score
            in zip(photo_ids, photo_paths, ranks, similar_ids, similar_paths, scores)
        )

    return write


@contextmanager
def output(path: Path | None) -> Iterator[TextIO]:
    """stdout as UTF-8 text, or a temporary file beside `path` renamed over it only once everything is written."""
    if path is None:
        stream = open(sys.stdout.fileno(), "w", encoding="utf-8", newline="", closefd=False)
        with stream:
            yield stream
        return
    with atomic_file(path, "w", encoding="utf-8", newline="") as stream:
        yield stream


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.export", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("index", type=Path, help="the index file written by python -m precompute")
    parser.add_argument("--format", choices=FORMATS, default="csv", help="csv (with a header row) or jsonl (default: %(default)s)")
    parser.add_argument("--k", type=int, help="similar photos per photo, best first (default: all the index keeps)")
    parser.add_argument("--min-score", type=number_from(-1, 1, "a cosine"), metavar="S", help="only pairs scoring at least S (a cosine, -1 to 1)")
    parser.add_argument("--out", type=Path, help="write to FILE, atomically (default: stdout)")
    args = parser.parse_args(argv)
    if args.k is not None and args.k < 1:
        parser.error(f"--k must be at least 1, not {args.k}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        index = read_index(args.index)
        stored = index.k
        if args.k is not None and args.k > stored:
            print(f"error: --k {args.k}: the index keeps {stored} similar photos per photo", file=sys.stderr)
            return EXIT_USAGE
        if args.out is not None and not args.out.parent.is_dir():
            print(f"error: cannot write {args.out}: no folder {args.out.parent}", file=sys.stderr)
            return EXIT_ERROR
        with output(args.out) as out:
            done = export(index, out, args.format, args.k, args.min_score)
    except IndexFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error of ours, and nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as err:
        print(f"error: cannot write {args.out or 'stdout'}: {err.strerror or err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; nothing written" if args.out else "interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    where = f" to {args.out}" if args.out else ""
    print(f"Exported {done.rows:,} rows for {done.photos:,} photos{where}.", file=sys.stderr)
    if done.undecodable:
        print(f"note: paths not valid UTF-8: {len(done.undecodable):,}; their undecodable bytes are written as U+FFFD "
              "(join on the ids)", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
