"""The commands from before the tools left precompute/ (issue #23) still run the same tools."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

OLD_AND_NEW = [
    ("precompute.publish", "tools.publish"),
    ("precompute.export", "tools.export"),
    ("precompute.duplicates", "tools.duplicates"),
    ("precompute.demo", "tools.demo"),
    ("precompute.evaluate", "tools.evaluate"),
    ("precompute.evaluate.duplicate_threshold", "tools.evaluate.duplicate_threshold"),
    ("precompute.evaluate.float16", "tools.evaluate.float16"),
    ("precompute.evaluate.feedback", "tools.evaluate.feedback"),
    ("precompute.evaluate.categories", "tools.evaluate.categories"),
]


def help_of(module: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("old,new", OLD_AND_NEW, ids=[old for old, _ in OLD_AND_NEW])
@pytest.mark.slow
def test_an_old_command_runs_the_tool_where_it_lives_now(old, new):
    result = help_of(old)
    assert result.returncode == 0, result.stderr
    assert result.stdout == help_of(new).stdout
    assert result.stdout.startswith(f"usage: python -m {new} ")


def test_an_old_command_passes_its_arguments_and_exit_status_on(tmp_path):
    result = subprocess.run([sys.executable, "-m", "precompute.export", str(tmp_path / "missing.pkl")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "missing.pkl" in result.stderr
    assert "Traceback" not in result.stderr
