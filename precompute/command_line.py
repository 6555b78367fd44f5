"""What every `python -m precompute…` command does alike: one-line usage errors, number options, SIGTERM as Ctrl-C.

Kept free of torch so that light commands (publish) start at once.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad options get one line on stderr, not the whole usage text."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def raise_interrupt(signum: int, frame) -> None:
    """A signal handler: `kill` stops a command as cleanly as Ctrl-C does."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


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
