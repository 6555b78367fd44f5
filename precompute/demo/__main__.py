"""Keeps the old command `python -m precompute.demo` working: the tool is `python -m tools.demo` now."""

import runpy

runpy.run_module("tools.demo", run_name="__main__", alter_sys=True)
