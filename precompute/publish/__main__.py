"""Keeps the old command `python -m precompute.publish` working: the tool is `python -m tools.publish` now."""

import runpy

runpy.run_module("tools.publish", run_name="__main__", alter_sys=True)
