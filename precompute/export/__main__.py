"""Keeps the old command `python -m precompute.export` working: the tool is `python -m tools.export` now."""

import runpy

runpy.run_module("tools.export", run_name="__main__", alter_sys=True)
