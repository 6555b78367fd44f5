"""Run a real gunicorn serving an index, for tests that talk HTTP to it (browser, Heroku runtime)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STARTUP_LIMIT_S = 90  # how long to wait for /healthz before giving up (a readiness wait, not a speed check)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_gunicorn(gunicorn: Sequence[str], index: Path, log: Path, env: dict | None = None) -> Iterator[str]:
    """Start `gunicorn` (the command, as a list) on a free local port; yield its base URL; stop it.

    One worker with threads: a browser opens spare connections it may never
    use, and a lone sync worker would sit on such a socket until its timeout.
    """
    port = free_port()
    command = [*gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4", "--timeout", "120", "app:create_app()"]
    with running_server(command, port, log, {"LOOKALIKE_INDEX": str(index), **(env or {})}) as (base, _):
        yield base


@contextlib.contextmanager
def running_server(command: Sequence[str], port: int, log: Path, env: dict) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run `command` from the project root until it answers /healthz on `port`; yield (base URL, process); stop it."""
    with open(log, "wb") as output:
        server = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base, server, log)
        yield base, server
    finally:
        stop_process(server)


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_healthy(base: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {server.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer /healthz within {STARTUP_LIMIT_S} s:\n{log.read_text(errors='replace')}")
