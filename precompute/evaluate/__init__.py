"""Keeps the old commands `python -m precompute.evaluate` and `python -m precompute.evaluate.MODULE` working.

Quality evaluation is `tools/evaluate/` now; this package's modules are found there.
"""

from pathlib import Path

__path__ = [str(Path(__file__).resolve().parents[2] / "tools" / "evaluate")]
