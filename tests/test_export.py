"""`python -m tools.export`: the similar lists as CSV or JSON Lines, row for row as the index holds them, streamed."""

from __future__ import annotations

import csv
import io
import json
import pickle
import signal
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from benchmarks.synthetic_index import write_synthetic_index
from core.index_file import read_index, write_index
from tests.support.index_samples import valid_index, with_path
from tests.support.live_server import ROOT
from tests.support.paused_run import start_paused, wait_until_paused
from tools.export import COLUMNS, main


def _rows(path: Path, fmt: str) -> list[dict]:
    text = path.read_bytes().decode("utf-8")  # strict: the output is valid UTF-8
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text, newline="")))
    return [json.loads(line) for line in text.splitlines()]


def _expected(index: dict, k: int, min_score: float | None = None) -> list[tuple]:
    """(photo_id, photo_path, rank, similar_id, similar_path, score) straight from the index's arrays."""
    photos, neighbours, scores = index.photos, index.neighbours, index.scores
    return [
        (int(photos.ids[row]), photos.path(row), rank + 1, int(photos.ids[neighbours[row, rank]]),
         photos.path(int(neighbours[row, rank])), float(scores[row, rank]))
        for row in range(len(photos)) for rank in range(k)
        if min_score is None or scores[row, rank] >= min_score
    ]


def _check(rows: list[dict], expected: list[tuple]) -> None:
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected):
        assert list(row) == list(COLUMNS)
        got = (int(row["photo_id"]), row["photo_path"], int(row["rank"]), int(row["similar_id"]), row["similar_path"])
        assert got == want[:5]
        assert abs(float(row["score"]) - want[5]) <= 5e-7


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_holidays_export_matches_the_index_row_for_row(holidays_index, tmp_path, fmt, capsys):
    out = tmp_path / f"similar.{fmt}"
    assert main([str(holidays_index), "--format", fmt, "--out", str(out)]) == 0
    index = read_index(holidays_index)
    expected = _expected(index, index.neighbours.shape[1])
    assert len(expected) == 402 * 10
    _check(_rows(out, fmt), expected)
    assert capsys.readouterr().err == f"Exported 4,020 rows for 402 photos to {out}.\n"


def test_k_and_min_score_cut_the_lists(holidays_index, tmp_path):
    out = tmp_path / "cut.csv"
    assert main([str(holidays_index), "--k", "3", "--min-score", "0.6", "--out", str(out)]) == 0
    expected = _expected(read_index(holidays_index), 3, 0.6)
    assert 402 < len(expected) < 3 * 402, "the filter should keep some pairs and drop others"
    _check(_rows(out, "csv"), expected)


def test_stdout_by_default_from_the_command_line(tmp_path):
    index = write_synthetic_index(tmp_path / "index.pkl", 30, k=4)
    done = subprocess.run([sys.executable, "-m", "tools.export", str(index), "--format", "jsonl", "--k", "2"],
                          cwd=ROOT, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode("utf-8").splitlines()
    assert len(lines) == 60 and json.loads(lines[0])["rank"] == 1 and json.loads(lines[1])["rank"] == 2
    assert done.stderr.decode() == "Exported 60 rows for 30 photos.\n"


def test_non_utf8_paths_are_written_as_valid_utf8_with_replacement_characters(tmp_path, capsys):
    index = with_path(valid_index(n=4, k=2), 1, "caf\udce9/b\udcffd.jpg")  # the bytes caf\xe9/b\xffd.jpg, Latin-1 on disk
    path = tmp_path / "index.pkl"
    write_index(index, path)
    out = tmp_path / "similar.csv"
    assert main([str(path), "--out", str(out)]) == 0
    rows = _rows(out, "csv")  # decodes strictly
    assert {row["photo_path"] for row in rows if row["photo_id"] == "1"} == {"caf\ufffd/b\ufffdd.jpg"}
    assert any(row["similar_path"] == "caf\ufffd/b\ufffdd.jpg" for row in rows)
    assert capsys.readouterr().err.endswith("note: paths not valid UTF-8: 1; their undecodable bytes are written as "
                                            "U+FFFD (join on the ids)\n")


FORMULAS = ['=HYPERLINK("http://evil.example").jpg', "+1+2.jpg", "-2+3.jpg", "@SUM(1).jpg", "\tcmd.jpg", "\rcr.jpg"]
CR_INSIDE = "x\r=1+1.jpg"  # a row of its own in a reader, were its lone CR left unquoted


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_csv_path_cells_that_begin_like_a_formula_are_escaped(tmp_path, fmt):
    """A spreadsheet opening the CSV shows such a name rather than running it; JSON Lines keeps every name exact."""
    names = [*FORMULAS, CR_INSIDE]
    index = valid_index(n=len(names) + 1, k=2)
    for row, name in enumerate(names, start=1):
        index = with_path(index, row, name)
    path = tmp_path / "index.pkl"
    write_index(index, path)
    out = tmp_path / f"similar.{fmt}"
    assert main([str(path), "--format", fmt, "--out", str(out)]) == 0
    rows = _rows(out, fmt)
    assert len(rows) == 2 * (len(names) + 1)
    written = {row["photo_path"] for row in rows} | {row["similar_path"] for row in rows}
    escaped = {"'" + name for name in FORMULAS} if fmt == "csv" else set(FORMULAS)
    assert written == {"p0.jpg", CR_INSIDE, *escaped}
    assert {int(row["photo_id"]) for row in rows} == set(range(len(names) + 1))


@pytest.fixture(scope="module")
def large_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200,000 photos × 2 similar: 400,000 rows (benchmarks.synthetic_index, tiny embeddings)."""
    return write_synthetic_index(tmp_path_factory.mktemp("large") / "index.pkl", 200_000, k=2, neighbours="random", dim=4)


@pytest.mark.slow
def test_the_export_streams_in_bounded_memory(large_index, tmp_path):
    """400,000 rows (30 MiB); the peak of Python allocations stays far below the output: one chunk's rows."""
    out = tmp_path / "similar.csv"
    tracemalloc.start()
    try:
        assert main([str(large_index), "--out", str(out)]) == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = out.stat().st_size
    with out.open(encoding="utf-8") as written:
        assert sum(1 for _ in written) == 1 + 400_000
    # All rows in memory at once would take more than the file itself (Python strings and tuples, several times more).
    assert peak < size / 10, f"peak {peak / 2**20:.1f} MiB of Python allocations for {size / 2**20:.1f} MiB of output"


def _bad_index(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.pkl"
    if kind == "foreign":
        path.write_bytes(pickle.dumps({"photos": []}))
    elif kind == "truncated":
        write_index(valid_index(), path)
        path.write_bytes(path.read_bytes()[:5000])
    elif kind == "folder":
        path.mkdir()
    return path


@pytest.mark.parametrize("kind, message", [
    ("missing", "index file not found"), ("foreign", "not a Lookalike index"),
    ("truncated", "truncated"), ("folder", "cannot read index file"),
])
def test_a_bad_index_gets_one_line_and_leaves_the_output_alone(tmp_path, capsys, kind, message):
    out = tmp_path / "similar.csv"
    out.write_text("previous export\n")
    assert main([str(_bad_index(tmp_path, kind)), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert out.read_text() == "previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def _status(argv: list[str]) -> int:
    """main's exit status, whether returned or raised by argparse."""
    try:
        return main(argv)
    except SystemExit as stopped:
        return stopped.code


@pytest.mark.parametrize("options, status, message", [
    (["--k", "11"], 2, "error: --k 11: the index keeps 2 similar photos per photo"),
    (["--k", "0"], 2, "--k must be at least 1"),
    (["--k", "two"], 2, "invalid int value"),
    (["--min-score", "nan"], 2, "must be a cosine from -1 to 1, got 'nan'"),
    (["--min-score", "1.5"], 2, "must be a cosine from -1 to 1"),
    (["--format", "xml"], 2, "invalid choice"),
    (["--out", "no-such-folder/similar.csv"], 1, "error: cannot write no-such-folder/similar.csv: no folder"),
])
def test_bad_options_get_one_clear_line(tmp_path, capsys, monkeypatch, options, status, message):
    path = tmp_path / "index.pkl"
    write_index(valid_index(k=2), path)
    monkeypatch.chdir(tmp_path)
    assert _status([str(path), *options]) == status
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_interrupted_export_leaves_the_previous_file(large_index, tmp_path):
    """Ctrl-C once the first chunk's rows are in the temporary file (the run pauses there: tests.support.paused_run)."""
    out = tmp_path / "similar.csv"
    out.write_text("previous export\n")
    with open(tmp_path / "stderr", "w+b") as stderr:
        export = start_paused("tools.export.main", [str(large_index), "--out", str(out)], "tools.export._paths", 2,
                              stderr=stderr)
        try:
            wait_until_paused(export)
            assert [p.stat().st_size > 0 for p in tmp_path.glob(".similar.csv.*.tmp")] == [True]  # partway
            export.send_signal(signal.SIGINT)
            export.wait(timeout=120)
        finally:
            export.kill()
            export.communicate()
        stderr.seek(0)
        err = stderr.read()
    assert export.returncode == 130, err
    assert err.decode() == "interrupted; nothing written\n"
    assert out.read_text() == "previous export\n"
    assert list(tmp_path.glob(".similar.csv.*")) == []
