"""What every command (`python -m precompute`, the tools) does alike: exit codes, one-line usage errors, number
options, SIGTERM as Ctrl-C.

Kept free of torch so that light commands (publish, duplicates) start at once.
"""

from __future__ import annotations

import argparse
import math
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

EXIT_OK = 0
EXIT_ERROR = 1  # nothing done: the input or the destination is not usable (the message says why)
EXIT_USAGE = 2  # a bad option
EXIT_INCOMPLETE = 3  # done, but some items were not (photos skipped, objects failed, photos not moved): each listed
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad options get one line on stderr, not the whole usage text."""

    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises KeyboardInterrupt (its text the signal's name): `kill` stops a command
    as cleanly as Ctrl-C does."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_received: list[str] = []  # the signals `sigterm_as_interrupt` turned into KeyboardInterrupt, latest last


def _raise_interrupt(signum: int, frame) -> None:
    _received.append(signal.Signals(signum).name)
    raise KeyboardInterrupt(_received[-1])


def interrupted_by(interrupt: KeyboardInterrupt) -> str:
    """The signal's name: the interrupt's text, or, where a library re-raised a bare KeyboardInterrupt (Ray's
    `get` does when the signal lands inside it), the last signal received; else Ctrl-C's SIGINT."""
    return str(interrupt) or (_received[-1] if _received else "SIGINT")


def at_least(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than `minimum` (and no larger than `maximum`)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be {maximum} or less, got {value}")
        return value

    return parse


def number_from(minimum: float, maximum: float, what: str = "a number") -> Callable[[str], float]:
    """An argparse type: a number from `minimum` to `maximum` (never nan), `what` naming it in the error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not minimum <= value <= maximum:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be {what} from {minimum} to {maximum}, got {text!r}")
        return value

    return parse
