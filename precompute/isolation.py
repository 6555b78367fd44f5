"""Run a decoder that may crash in a child process of its own, so a crash costs one photo, not a worker.

A segfault or abort in a C decoder (libheif, LibRaw, libjxl) kills the
process it runs in. In a DataLoader worker that would end the whole run; in
a forked child it ends only the child, and the photo is reported with the
signal that killed it. The child is forked from the process preparing the
photo, does nothing but decode (no torch, so no thread pool is touched after
the fork) and sends the small decoded picture back through a pipe. The
parent never runs these decoders itself: LibRaw's OpenMP threads, once
started in a process, deadlock its forked children. A child that does not
finish in time is killed and its photo reported, like a crash.
"""

from __future__ import annotations

import os
import pickle
import selectors
import signal
import time
from collections.abc import Callable
from typing import TypeVar

from precompute.decode import DecodeError

T = TypeVar("T")
# Far beyond any real photo's decode (a 12 MP HEIC takes about a second): a decoder stuck in a loop, or
# LibRaw's OpenMP deadlocked in a child of a process that had run it (never ours: see the module docstring).
DEFAULT_TIME_LIMIT_S = 300.0
_CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT)


def in_child_process(function: Callable[..., T], *args, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> T:
    """`function(*args)` run in a forked child; its exceptions re-raised here, a crash or a hang raised as DecodeError."""
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
    try:
        payload = _read_until_done(read_end, time.monotonic() + time_limit_s)
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise DecodeError(f"the decoder was stopped after {time_limit_s:.0f} s; the file may be damaged or hostile") from None
    finally:
        os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        raise DecodeError(f"the decoder crashed ({_signal_name(os.WTERMSIG(status))}); the file may be damaged or hostile")
    if os.WEXITSTATUS(status) != 0 or not payload:
        raise DecodeError(f"the decoder failed (exit status {os.WEXITSTATUS(status)})")
    succeeded, value = pickle.loads(payload)
    if not succeeded:
        raise value
    return value


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _read_until_done(fd: int, deadline: float) -> bytes:
    """All the child writes to the pipe until it closes it; TimeoutError past the deadline."""
    chunks = []
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            if not selector.select(max(0.0, deadline - time.monotonic())):
                raise TimeoutError
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
