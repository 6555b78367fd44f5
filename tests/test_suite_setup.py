"""The suite's own rules: without the data sets a test skips, but fails in CI; the markers reach the tests they name."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.datasets import dataset
from tests.support.live_server import ROOT


@pytest.mark.parametrize("ci", ["", "0", "false"])
def test_a_missing_data_set_skips_outside_ci(tmp_path, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="data set not found at .*missing"):
        dataset(tmp_path / "missing")


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_missing_data_set_fails_in_ci(tmp_path, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match=f"data set not found at .*missing.*; CI={ci} requires the data sets"):
        dataset(tmp_path / "missing")


def test_a_present_data_set_is_handed_out(tmp_path, monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert dataset(tmp_path) == tmp_path


def _collected(*options: str) -> set[str]:
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *options],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {line for line in done.stdout.splitlines() if "::" in line}


def _makefile_fast_selection() -> str:
    return re.search(r"^FAST_TESTS := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE).group(1)


@pytest.mark.slow
def test_the_markers_select_what_they_name():
    """Data fixtures mark their users needs_data; the browser and Ray modules are marked whole; test-fast keeps the rest."""
    needs_data = _collected("-m", "needs_data", "tests/test_export.py", "tests/test_approximate.py")
    assert "tests/test_export.py::test_holidays_export_matches_the_index_row_for_row[csv]" in needs_data  # holidays_index
    assert not any("test_the_export_streams_in_bounded_memory" in test for test in needs_data)
    browser = _collected("-m", "browser", "tests/test_browser.py", "tests/test_browser_media.py")
    assert browser == _collected("tests/test_browser.py", "tests/test_browser_media.py")
    assert _collected("-m", "cluster", "tests/test_cluster.py") == _collected("tests/test_cluster.py")
    fast = _collected("-m", _makefile_fast_selection())
    assert len(fast) > 300  # never an empty inner loop (pytest would exit 5, and make fail)
    assert not any(test.startswith(("tests/test_browser", "tests/test_cluster.py")) for test in fast)
