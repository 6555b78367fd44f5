"""Run a decoder that may crash in a child process of its own, so a crash costs one photo, not a worker.

A segfault or abort in a C decoder (libheif, LibRaw, libjxl) kills the
process it runs in. In a DataLoader worker that would end the whole run; in
a forked child it ends only the child, and the photo is reported with the
signal that killed it. The child is forked from the process preparing the
photo, does nothing but decode (no torch, so no thread pool is touched after
the fork) and sends the small decoded picture back through a pipe.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable
from typing import TypeVar

from precompute.decode import DecodeError

T = TypeVar("T")
_CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT)


def in_child_process(function: Callable[..., T], *args) -> T:
    """`function(*args)` run in a forked child; its exceptions re-raised here, a crash raised as DecodeError."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns, never runs the parent's exit handlers
        status = 1
        try:
            os.close(read_end)
            for crash in _CRASH_SIGNALS:  # die of it, plainly: no handler of the parent's (torch's, faulthandler's) runs
                signal.signal(crash, signal.SIG_DFL)
            try:
                outcome = (True, function(*args))
            except Exception as err:  # noqa: BLE001 - handed to the parent, which decides
                outcome = (False, err)
            with os.fdopen(write_end, "wb") as pipe:
                pickle.dump(outcome, pipe, protocol=pickle.HIGHEST_PROTOCOL)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else f"signal {number}"
        raise DecodeError(f"the decoder crashed ({name}); the file may be damaged or hostile")
    if os.WEXITSTATUS(status) != 0 or not payload:
        raise DecodeError(f"the decoder failed (exit status {os.WEXITSTATUS(status)})")
    succeeded, value = pickle.loads(payload)
    if not succeeded:
        raise value
    return value
