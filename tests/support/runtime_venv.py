"""A fresh virtual environment from requirements.txt alone, as Heroku builds it: for the runtime test and the slug benchmark."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.live_server import ROOT


def fresh_runtime_venv(venv: Path) -> Path:
    """Create `venv` and install requirements.txt into it, nothing else; AssertionError with pip's output if it fails."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(ROOT / "requirements.txt")],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, f"pip could not install requirements.txt:\n{install.stderr}"
    return venv


def installed_mb(folder: Path) -> float:
    """Bytes of every file under `folder` (links not followed), in MiB."""
    total = sum(os.lstat(Path(where, name)).st_size for where, _, names in os.walk(folder) for name in names)
    return total / 2**20
