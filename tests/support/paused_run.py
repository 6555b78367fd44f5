"""A real command in a child process that stops at a known point mid-run, so a test can interrupt it exactly there.

Waiting for a progress line and then signalling races with the run on a busy machine: the run may end before the
signal lands. Here the child does what `python -m COMMAND ARGS` does, `sys.exit(main(ARGS))` with the command's
own `main`, except that one of its functions, on its Nth call, first prints PAUSED on stdout and sleeps; the signal ends that sleep as it would end any work, and what the
test then sees is the command's own interrupt handling, from inside the run.

The child starts with Ctrl-C's default action, as a terminal's foreground job does, even where the test runner
itself ignores SIGINT (a non-interactive shell's `make test &` starts it so, and Python keeps an ignored SIGINT
ignored): otherwise Ctrl-C never reaches the command and the run completes with exit 0.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import IO

from tests.support.live_server import ROOT

PAUSED = b"lookalike test: paused mid-run\n"

_CHILD = f"""
import functools, importlib, sys, time
function, call, main, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]

def named(dotted):
    module_name, name = dotted.rsplit(".", 1)
    return importlib.import_module(module_name), name

module, name = named(function)
original = getattr(module, name)
calls = 0

@functools.wraps(original)
def pausing(*args, **kwargs):
    global calls
    calls += 1
    if calls == call:
        sys.stdout.buffer.write({PAUSED!r})
        sys.stdout.flush()
        time.sleep(600)  # until a signal: its handler raises here, inside the run
    return original(*args, **kwargs)

setattr(module, name, pausing)
sys.exit(getattr(*named(main))(argv))
"""


def _as_a_terminal_starts_it() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_paused(main: str, args: Sequence[str], function: str, call: int, *, stderr: IO[bytes],
                 new_group: bool = False) -> subprocess.Popen:
    """The command whose `main` is "package.module.main", run with `args`, pausing at the `call`th call of `function`.

    `function` ("package.module.name") must be one that its callers look up in its module when they call it.
    """
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, function, str(call), main, *args], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=stderr, start_new_session=new_group, preexec_fn=_as_a_terminal_starts_it,
    )


def wait_until_paused(run: subprocess.Popen) -> None:
    """Return once the run is paused mid-run (its stdout said so); fail if it ended first."""
    while line := run.stdout.readline():
        if line == PAUSED:
            return
    raise AssertionError(f"the run ended (exit {run.wait()}) before reaching the point where it pauses")
