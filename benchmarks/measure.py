"""Timing, CPU utilisation, peak memory and the result rows every benchmark reports."""

from __future__ import annotations

import multiprocessing
import os
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One line of the results table: our figure against the baseline measured beside it."""

    figure: str
    ours: float
    baseline: float | None
    unit: str
    goal: str = ""  # e.g. "ratio ≥ 0.85"; empty when the row is information only
    higher_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """ours / baseline for rates, baseline / ours for costs: above 1 always means ours is better."""
        if self.baseline is None or self.baseline == 0 or self.ours == 0:
            return None
        return self.ours / self.baseline if self.higher_is_better else self.baseline / self.ours


@dataclass
class Usage:
    """What a stretch of work cost: wall time, and CPU time of this process and its reaped children."""

    seconds: float
    cpu_seconds: float

    @property
    def cpu_utilisation(self) -> float:
        """Busy cores averaged over the stretch, as a fraction of all cores (1.0 = every core busy)."""
        return self.cpu_seconds / self.seconds / (os.cpu_count() or 1) if self.seconds else 0.0


def _cpu_now() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def measure(work: Callable[[], Any]) -> tuple[Any, Usage]:
    """Run `work()`; return its result and its wall and CPU time (worker processes included once joined)."""
    cpu, wall = _cpu_now(), time.perf_counter()
    result = work()
    return result, Usage(time.perf_counter() - wall, _cpu_now() - cpu)


class LoadAverage:
    """The 1-minute load average sampled every few seconds while a `with` block runs: how shared the cores were.

    On shared cores wall time says as much about the neighbours' jobs as about
    ours; a run's rows carry this so that readers can tell.
    """

    def __init__(self, every_s: float = 5.0):
        self.samples: list[float] = []
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> LoadAverage:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self._every_s):
                return

    def describe(self) -> str:
        """e.g. "load average 3.1–9.8 (mean 6.2) on 2 cores"."""
        if not self.samples:
            return "load average not sampled"
        return (f"load average {min(self.samples):.1f}–{max(self.samples):.1f} "
                f"(mean {sum(self.samples) / len(self.samples):.1f}) on {os.cpu_count()} cores")


def best_of_interleaved(rounds: int, **contenders: Callable[[], Any]) -> dict[str, Usage]:
    """Run each contender once per round, alternating, and keep each one's fastest round.

    On shared cores other jobs only ever slow a run down, so the fastest of a
    few interleaved rounds is the fairest estimate for both sides.
    """
    best: dict[str, Usage] = {}
    for _ in range(rounds):
        for name, work in contenders.items():
            _, usage = measure(work)
            if name not in best or usage.seconds < best[name].seconds:
                best[name] = usage
    return best


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_main(connection, work: Callable[..., Any], args: tuple) -> None:
    try:
        result = work(*args)
        connection.send((True, result, peak_rss_mib()))
    except BaseException as err:  # report it to the parent instead of dying silently
        connection.send((False, repr(err), peak_rss_mib()))
    finally:
        connection.close()


def in_fresh_process(work: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """Run `work(*args)` in a new interpreter; return its result and that process's peak RSS in MiB.

    Peak RSS only ever grows within a process, so each measurement needs its own.
    `work` must be a module-level function and its result picklable.
    """
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(send, work, args))
    process.start()
    send.close()
    ok, result, rss = receive.recv()
    process.join()
    if not ok:
        raise RuntimeError(f"benchmark child process failed: {result}")
    return result, rss


def rss_mib(pid: int | str = "self") -> float:
    """A process's resident memory now, in MiB (Linux)."""
    with open(f"/proc/{pid}/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def mapped_file_kib(pid: int | str, path: Path) -> dict[str, int]:
    """Size, Rss, Pss and private KiB of a process's mappings of the file at `path` (Linux smaps), summed."""
    totals = dict.fromkeys(("Size", "Rss", "Pss", "Private_Clean", "Private_Dirty"), 0)
    inside = False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's first line: its address range
            inside = len(fields) >= 6 and fields[5] == str(path)
        elif inside and fields[0].rstrip(":") in totals:
            totals[fields[0].rstrip(":")] += int(fields[1])
    return totals


def reset_peak_rss() -> None:
    """Start this process's peak-RSS reading (VmHWM) afresh from its current RSS (Linux)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def peak_rss_since_reset_mib() -> float:
    """This process's peak RSS since `reset_peak_rss`, in MiB (Linux reports VmHWM in kB)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
