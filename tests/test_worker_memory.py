"""Workers forked after the app loads keep sharing its memory, even when the garbage collector runs in them."""

from __future__ import annotations

import gc
import os
from pathlib import Path

from app import create_app


def _private_dirty_mib() -> float:
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("Private_Dirty:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no Private_Dirty line in smaps_rollup")


def _copied_by_a_full_collection() -> float:
    before = _private_dirty_mib()
    gc.collect()
    return _private_dirty_mib() - before


def test_a_full_collection_in_a_forked_worker_copies_none_of_the_loaded_app(synthetic_index):
    create_app(synthetic_index)  # what gunicorn's --preload does in the master
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: a full collection walks every object it may free
        frozen = _copied_by_a_full_collection()
        gc.unfreeze()  # what it would have been without create_app's gc.freeze()
        unfrozen = _copied_by_a_full_collection()
        os.write(write, f"{frozen} {unfrozen}".encode())
        os._exit(0)
    os.close(write)
    frozen, unfrozen = map(float, os.read(read, 128).split())
    os.close(read)
    os.waitpid(pid, 0)
    # Unfrozen, the collector writes to every tracked object's header: the test process
    # holds torch and numpy, so tens of MiB of shared pages become the worker's own.
    assert frozen < unfrozen / 10, f"a collection copied {frozen:.1f} MiB into the worker, unfrozen {unfrozen:.1f}"
    assert unfrozen > 10, f"the control collection copied only {unfrozen:.1f} MiB"
