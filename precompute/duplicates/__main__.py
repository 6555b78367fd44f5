"""Keeps the old command `python -m precompute.duplicates` working: the tool is `python -m tools.duplicates` now."""

import runpy

runpy.run_module("tools.duplicates", run_name="__main__", alter_sys=True)
