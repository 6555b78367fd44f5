"""Every way to call precompute wrongly gets one clear line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from precompute.cli import EXIT_ERROR, main
from tests.support.hostile_photos import photo_like

ROOT = Path(__file__).resolve().parent.parent
USAGE = 2


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    photo_like().save(folder / "one.jpg")
    return folder


def run_main(args: list[str], capsys) -> tuple[int, str]:
    """main() in this process: an escaping exception would fail the test with its traceback."""
    try:
        code = main(args)
    except SystemExit as exit:  # argparse leaves through here
        code = exit.code
    return code, capsys.readouterr().err


def assert_one_line(stderr: str, *words: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "error" in lines[0] and all(word in lines[0] for word in words), lines[0]


def test_missing_folder(tmp_path, capsys):
    code, err = run_main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "i.pkl")], capsys)
    assert code == EXIT_ERROR
    assert_one_line(err, "photo folder not found", "nowhere")


def test_a_file_given_as_the_folder(photos, tmp_path, capsys):
    code, err = run_main([str(photos / "one.jpg"), "--out", str(tmp_path / "i.pkl")], capsys)
    assert code == EXIT_ERROR
    assert_one_line(err, "not a folder")


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no photos here")
    code, err = run_main([str(tmp_path / "empty"), "--out", str(tmp_path / "i.pkl")], capsys)
    assert code == EXIT_ERROR
    assert_one_line(err, "no photos found")
    assert not (tmp_path / "i.pkl").exists()


def test_a_folder_of_only_unreadable_photos_writes_nothing(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "text.jpg").write_text("not a photo")
    args = [str(tmp_path / "bad"), "--out", str(tmp_path / "i.pkl"), "--model", "efficientnet-lite0", "--workers", "0"]
    code, err = run_main(args, capsys)
    assert code == EXIT_ERROR
    assert "none of the 1 photos" in err and "Traceback" not in err
    assert not (tmp_path / "i.pkl").exists()


@pytest.mark.parametrize("out", ["a-file/index.pkl", "a-file/deeper/index.pkl"])
def test_output_under_a_regular_file(out, photos, tmp_path, capsys):
    """Works as root too: no permission can make a file into a folder."""
    (tmp_path / "a-file").write_text("a regular file")
    code, err = run_main([str(photos), "--out", str(tmp_path / out)], capsys)
    assert code == EXIT_ERROR
    assert_one_line(err, "cannot write the index", "is a file, not a folder")


def test_output_that_is_a_folder(photos, tmp_path, capsys):
    code, err = run_main([str(photos), "--out", str(tmp_path)], capsys)
    assert code == EXIT_ERROR
    assert_one_line(err, "--out must be a file")


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root (as CI does): folder permissions do not stop root writing")
def test_output_in_a_read_only_folder(photos, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, err = run_main([str(photos), "--out", str(locked / "index.pkl")], capsys)
    assert code == EXIT_ERROR
    assert_one_line(err, "cannot write the index", "Permission denied")


@pytest.mark.parametrize(
    "options, words",
    [
        (["--k", "0"], ["--k", "1 or more"]),
        (["--k", "1001"], ["--k", "1000 or less"]),
        (["--batch-size", "many"], ["--batch-size", "whole number"]),
        (["--workers", "-1"], ["--workers", "0 or more"]),
        (["--model", "vgg"], ["--model", "invalid choice"]),
        (["--frobnicate"], ["unrecognized arguments"]),
    ],
)
def test_bad_options(options, words, photos, capsys):
    code, err = run_main([str(photos), *options], capsys)
    assert code == USAGE
    assert_one_line(err, *words)


def test_missing_weights_file(photos, tmp_path, capsys):
    args = [str(photos), "--out", str(tmp_path / "i.pkl"), "--model", "resnet18", "--weights", str(tmp_path / "no.pt")]
    code, err = run_main(args, capsys)
    assert code == EXIT_ERROR
    assert_one_line(err, "weights file not found")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_asked_for_without_a_gpu(photos, tmp_path, capsys):
    code, err = run_main([str(photos), "--out", str(tmp_path / "i.pkl"), "--device", "cuda"], capsys)
    assert code == EXIT_ERROR
    assert_one_line(err, "no CUDA GPU")


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, code, words",
    [(["nowhere"], EXIT_ERROR, "photo folder not found"), (["photos", "--k", "x"], USAGE, "--k")],
)
def test_the_real_command_line(args, code, words, photos, tmp_path):
    """The same through `python -m precompute`, as a user runs it."""
    argv = [str(tmp_path / a) if a in ("nowhere", "photos") else a for a in args]
    result = subprocess.run([sys.executable, "-m", "precompute", *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == code
    assert "Traceback" not in result.stderr
    assert_one_line(result.stderr, words)
