"""The options table in docs/indexing.md against `python -m precompute --help`: every option documented, no stale row."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support.live_server import ROOT

TABLE_ROW = re.compile(r"^\| `(--[a-z0-9-]+)[^`]*` \|(.*)$", re.M)
HELP_OPTION = re.compile(r"^  (--[a-z0-9-]+)(?: \{([^}]*)\})?", re.M)


def _documented() -> dict[str, str]:
    text = (ROOT / "docs" / "indexing.md").read_text(encoding="utf-8")
    section = text[text.index("## Options of `python -m precompute"):]
    section = section[: section.index("\n#", 1)]
    return {option: rest for option, rest in TABLE_ROW.findall(section)}


def _offered() -> dict[str, list[str]]:
    shown = subprocess.run([sys.executable, "-m", "precompute", "--help"], cwd=ROOT, capture_output=True,
                           text=True, check=True, timeout=120).stdout
    return {option: choices.split(",") if choices else [] for option, choices in HELP_OPTION.findall(shown)
            if option != "--help"}


def test_every_option_of_the_command_has_its_row_and_every_row_an_option():
    documented, offered = _documented(), _offered()
    assert len(offered) >= 10  # the help was read, not an empty page
    assert sorted(documented) == sorted(offered)


def test_each_documented_choice_is_one_the_command_takes():
    documented = _documented()
    for option, choices in _offered().items():
        for choice in choices:
            assert f"`{choice}`" in documented[option], (option, choice)
