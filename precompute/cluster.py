"""Step 3 on a Ray cluster: decode and thumbnail in Ray tasks, embed in Ray actors that hold the model.

The driver (this process) has scanned and planned already; only the photos to
embed go to the cluster, one batch per task. A task runs `prepare_photo` on
each photo of its batch on whichever node has a free CPU, writes the
thumbnails into the shared thumbnail folder and hands its uint8 crops straight
to an embedding actor (ONNX Runtime on CPU nodes, PyTorch in fp16 on a GPU).
Only embeddings and photo records come back to the driver, which puts them in
photo order; neighbours and the index file are then made as in a local run.
With `--rerank local` the tasks also extract each photo's evidence, and the
candidate pairs are verified in tasks too (`verify_on_cluster`), each reading
the evidence side file the driver wrote into the shared --out folder.

Every node must see the photo folder and the thumbnail folder at the same
paths (NFS, a mounted volume): this is checked on every node before any work
is sent, and again by every task, so a node that cannot see them stops the run
with one line instead of reporting every photo as unreadable.

Ray is optional (requirements-cluster.txt) and imported only here, only when
`--ray` is given.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np
import torch

from precompute.embed import EmbeddedPhotos, concatenate, embed_batch
from precompute.models import LoadedModel
from precompute.prepare import PreparedPhoto, prepare_photo
from precompute.preprocess import Preprocessing
from precompute.runtime import make_runner
from precompute.scan import PhotoFile
from precompute.shared_storage import (
    SHARED_PATHS,
    ClusterError,
    StorageNotShared,
    alive_nodes,
    check_shared_storage,
    first_line,
    require_folders,
)

if TYPE_CHECKING:
    from precompute.evidence import EvidenceSpec  # imports OpenCV: only where evidence is extracted

__all__ = ["INSTALL_HINT", "ClusterError", "connect", "check_shared_storage", "embed_on_cluster", "verify_on_cluster"]

INSTALL_HINT = "--ray needs Ray, which is not installed: pip install -r requirements-cluster.txt"
_CONNECT_TIMEOUT_S = 10  # for the address to accept a connection; Ray itself would retry for minutes
_RETRIES = 3  # per task, and per actor restart, when a node dies
_VERIFY_GROUPS_PER_TASK = 256  # queries (each with its candidates) per verification task: seconds of work each
_CHUNKS_IN_FLIGHT_PER_SLOT = 2  # chunks queued per decoding CPU and actor: enough to keep both busy, bounded memory


def connect(address: str, device: str = "auto") -> None:
    """Join the Ray cluster at `address` as its driver ("auto": $RAY_ADDRESS, else the cluster running on this machine).

    Never starts a Ray of its own: a missing cluster is an error, and so is
    `device` "cuda" on a cluster without a GPU.
    """
    try:
        import ray
    except ImportError:
        raise ClusterError(INSTALL_HINT) from None
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS") or "auto"
    if address != "auto":
        _check_reachable(address)
    _join(ray, address)
    if device == "cuda" and not ray.cluster_resources().get("GPU"):
        raise ClusterError("--device cuda was asked for, but the Ray cluster has no GPU")


def _join(ray, address: str) -> None:
    if ray.is_initialized():
        if address in ("auto", ray.get_runtime_context().gcs_address):
            return  # a second build in the same process, on the same cluster
        ray.shutdown()
    on_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        # log_to_driver=False: the nodes' own logs stay in their log folders, not in the progress output.
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, runtime_env=_runtime_env())
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ClusterError(f"cannot join the Ray cluster at {address}: {first_line(err)}") from None
    finally:
        # Ray's core puts its own SIGTERM handler in place, which ends the driver with a native stack dump;
        # the command line's handler stops the run as cleanly as Ctrl-C (exit 130, the previous index untouched).
        if callable(on_sigterm):
            signal.signal(signal.SIGTERM, on_sigterm)


def _check_reachable(address: str) -> None:
    """Fail in seconds with the reason, where ray.init would retry an unreachable address for minutes."""
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise ClusterError(f"--ray expects HOST:PORT of the cluster's head (or auto), got {address!r}")
    try:
        socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {err.strerror or err}") from None


def _runtime_env() -> dict:
    """Ship this very `precompute` package to the nodes, so they run the driver's code, not whatever they have."""
    return {"py_modules": [str(Path(__file__).resolve().parent)]}


def embed_on_cluster(
    photos: Sequence[PhotoFile],
    model: LoadedModel,
    photo_dir: Path,
    thumbnail_dir: Path,
    *,
    batch_size: int = 32,
    device: str = "auto",
    on_progress: Callable[[int], None] | None = None,
    evidence: EvidenceSpec | None = None,
) -> EmbeddedPhotos:
    """What `embed.embed_photos` returns, computed by the cluster joined with `connect`.

    With `evidence`, the decoding tasks also extract each photo's instance evidence on the nodes.

    Call `check_shared_storage` first: a node without the shared folders would
    otherwise fail every task it is given.

    Failures of single photos are collected as in a local run; a cluster that
    cannot finish (storage not shared, every retry spent) raises ClusterError.
    """
    import ray

    if not photos:
        return concatenate([], model.dim)
    model_ref = ray.put(model)  # held here until the run ends: a restarted actor loads the model from it again
    actors = _start_embedders(model_ref, device)
    try:
        return _run_chunks(photos, model, photo_dir, thumbnail_dir, actors, batch_size, on_progress, evidence)
    except ray.exceptions.RayError as err:
        raise ClusterError(_cluster_failure(err)) from None
    finally:
        for actor in actors:
            ray.kill(actor)


def _run_chunks(photos, model, photo_dir, thumbnail_dir, actors, batch_size, on_progress, evidence) -> EmbeddedPhotos:
    """Keep a bounded number of chunks in flight, each on the actor with the fewest queued, and gather them in order."""
    import ray

    prepare = ray.remote(num_cpus=1, max_retries=_RETRIES)(_prepare_chunk)
    starts = range(0, len(photos), batch_size)
    slots = int(ray.cluster_resources().get("CPU", 1)) + len(actors)
    window = max(2, _CHUNKS_IN_FLIGHT_PER_SLOT * slots)
    results: list[EmbeddedPhotos | None] = [None] * len(starts)
    pending: dict = {}  # result ref -> (chunk number, actor number)
    queued = [0] * len(actors)
    submitted = 0
    while submitted < len(starts) or pending:
        while submitted < len(starts) and len(pending) < window:
            start = starts[submitted]
            prepared = prepare.remote(
                start, photos[start : start + batch_size], model.input_specs, photo_dir, thumbnail_dir, evidence
            )
            actor = min(range(len(actors)), key=queued.__getitem__)
            pending[actors[actor].embed.remote(prepared)] = (submitted, actor)
            queued[actor] += 1
            submitted += 1
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            chunk, actor = pending.pop(ref)
            queued[actor] -= 1
            results[chunk] = ray.get(ref)
            if on_progress:
                on_progress(min(batch_size, len(photos) - starts[chunk]))
    return concatenate(results, model.dim)


def verify_on_cluster(evidence_path: Path, groups: list[tuple[int, np.ndarray]]) -> list[np.ndarray]:
    """`rerank.verify_here` in Ray tasks on the nodes, each reading the side file from the shared --out folder."""
    import ray

    task = ray.remote(num_cpus=1, max_retries=_RETRIES)(_verify_chunk)
    chunks = [groups[start : start + _VERIFY_GROUPS_PER_TASK] for start in range(0, len(groups), _VERIFY_GROUPS_PER_TASK)]
    try:
        answers = ray.get([task.remote(str(evidence_path), chunk) for chunk in chunks])
    except ray.exceptions.RayError as err:
        raise ClusterError(_cluster_failure(err)) from None
    return [found for answer in answers for found in answer]


def _verify_chunk(evidence_path: str, groups: list[tuple[int, np.ndarray]]) -> list[np.ndarray]:
    """A Ray task: verify some queries' candidates with the evidence file the driver wrote."""
    from precompute.evidence import read_evidence
    from precompute.rerank import verify_here

    if not Path(evidence_path).is_file():
        raise StorageNotShared(f"a node cannot see the evidence file {evidence_path}")
    return verify_here(groups, read_evidence(Path(evidence_path)).features)


def _prepare_chunk(
    start: int, photos: Sequence[PhotoFile], specs: list[Preprocessing], photo_dir: Path, thumbnail_dir: Path,
    evidence: EvidenceSpec | None = None,
) -> list[PreparedPhoto]:
    """A Ray task: `prepare_photo` for a run of photos, numbered from `start`; uint8 crops, never float tensors."""
    require_folders(photo_dir, thumbnail_dir)
    return [prepare_photo(start + offset, photo, specs, thumbnail_dir, evidence) for offset, photo in enumerate(photos)]


class _Embedder:
    """A Ray actor: the model, loaded once, embedding one chunk of prepared photos per call."""

    def __init__(self, model_in_store: list, device: str):
        import ray

        model: LoadedModel = ray.get(model_in_store[0])
        self.runner = make_runner(model, torch.device(device))
        self.dim = model.dim

    def embed(self, chunk: list[PreparedPhoto]) -> EmbeddedPhotos:
        return embed_batch(self.runner, chunk, self.dim)


def _start_embedders(model_ref, device: str) -> list:
    """One actor per GPU when the cluster has GPUs (and --device is not cpu), else one per node, spread out.

    A CPU actor reserves no CPU: its inference threads share the node's cores
    with the decoding tasks, as inference and decoding workers do in a local run.
    An actor whose node dies is restarted on another node, and its calls retried.
    """
    import ray

    gpus = int(ray.cluster_resources().get("GPU", 0))
    on_gpu = gpus > 0 and device != "cpu"
    count = gpus if on_gpu else len(alive_nodes())
    actor_class = ray.remote(
        num_gpus=1 if on_gpu else 0,
        num_cpus=0,
        max_restarts=_RETRIES,
        # Calls wait for the restart, however long the cluster takes to declare the node dead; an actor
        # past its restarts is dead for good and fails them, so this cannot hang.
        max_task_retries=-1,
        scheduling_strategy="SPREAD",
    )(_Embedder)
    # The reference goes inside a list, so Ray hands it over as it is: the driver keeps the model
    # in the object store for the whole run, for restarts too.
    return [actor_class.remote([model_ref], "cuda" if on_gpu else "cpu") for _ in range(count)]


def _cluster_failure(err: BaseException) -> str:
    """One line for the user out of Ray's error chains (a task's own exception, or a lost node or actor)."""
    import ray

    if isinstance(err, ray.exceptions.RayTaskError) and isinstance(err.cause, StorageNotShared):
        return f"{err.cause}; {SHARED_PATHS}"
    if isinstance(err, ray.exceptions.RayTaskError) and err.cause is not None:
        return f"a cluster task failed: {type(err.cause).__name__}: {first_line(err.cause)}"
    return f"the cluster could not finish the run ({type(err).__name__}): {first_line(err)}"
