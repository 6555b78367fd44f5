"""Before a cluster run: does every node see the driver's photo folder and thumbnail folder?

The photos and thumbnails are read and written by every node at the driver's
paths, so those paths must lead to the same shared folders everywhere (NFS, a
mounted volume). This module is what runs on each node for that check, and it
imports no torch: the check's tasks start in fresh worker processes, and
should answer in a second, not after torch's import.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from precompute.scan import PhotoFile

_CHECK_TIMEOUT_S = 120  # for every node to answer (its first worker process may have to start)
SHARED_PATHS = "every node must see the photos and the index folder at the same paths"


class ClusterError(Exception):
    """The cluster cannot do the run; the message says why, in one line."""


class StorageNotShared(Exception):
    """Raised on a node that cannot see the photo or thumbnail folder."""


def check_shared_storage(photo_dir: Path, thumbnail_dir: Path, sample: PhotoFile) -> None:
    """On every node: the photo folder holds `sample` as the driver sees it, and the thumbnail folder is this one.

    A marker file written here must be visible there: the same path on a
    node's own disk would pass a plain existence check and then scatter the
    thumbnails over the nodes.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    marker = thumbnail_dir / f".lookalike-shared-check-{secrets.token_hex(8)}"
    marker.write_bytes(b"")
    try:
        check = ray.remote(num_cpus=0, max_retries=0)(_storage_problem)
        refs = {
            check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote(
                photo_dir, thumbnail_dir, marker, sample
            ): node
            for node in alive_nodes()
        }
        ready, late = ray.wait(list(refs), num_returns=len(refs), timeout=_CHECK_TIMEOUT_S)
        if late:
            node = refs[late[0]]
            raise ClusterError(
                f"node {node['NodeManagerAddress']} did not answer the shared-storage check within {_CHECK_TIMEOUT_S} s"
            )
        for ref in ready:
            try:
                problem = ray.get(ref)
            except ray.exceptions.TaskUnschedulableError:
                continue  # the node left the cluster since it was listed: it gets no work either
            except ray.exceptions.RayError as err:
                problem = f"node {refs[ref]['NodeManagerAddress']} failed the shared-storage check: {first_line(err)}"
            if problem:
                raise ClusterError(f"{problem}; {SHARED_PATHS}")
    finally:
        marker.unlink(missing_ok=True)


def _storage_problem(photo_dir: Path, thumbnail_dir: Path, marker: Path, sample: PhotoFile) -> str | None:
    """A Ray task pinned to one node: what that node cannot see of the driver's folders, or None."""
    node = _node_name()
    try:
        require_folders(photo_dir, thumbnail_dir)
    except StorageNotShared as err:
        return str(err)
    try:
        seen = sample.path.stat().st_size
    except OSError as err:
        return f"node {node} cannot read {sample.path}: {err.strerror or err}"
    if seen != sample.size:
        return f"node {node} sees another {sample.path} ({seen} bytes, not {sample.size})"
    if not marker.exists():
        return f"node {node} has its own {thumbnail_dir}, not the driver's"
    if not os.access(thumbnail_dir, os.W_OK):
        return f"node {node} cannot write into {thumbnail_dir}"
    return None


def require_folders(photo_dir: Path, thumbnail_dir: Path) -> None:
    """Without this, a node missing the shared folders would report every photo it got as unreadable."""
    for folder, what in ((photo_dir, "photo folder"), (thumbnail_dir, "thumbnail folder")):
        if not folder.is_dir():
            raise StorageNotShared(f"node {_node_name()} cannot see the {what} {folder}")


def _node_name() -> str:
    import ray

    return ray.util.get_node_ip_address() + " (" + ray.get_runtime_context().get_node_id()[:8] + ")"


def alive_nodes() -> list[dict]:
    import ray

    return [node for node in ray.nodes() if node["Alive"]]


def first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
