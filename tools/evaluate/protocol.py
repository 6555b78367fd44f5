"""The evaluation protocol: choose on one half of holidays-dev, confirm on the other, with paired intervals.

Picking the best of many configurations on one small set selects noise. So the
scenes are split into two fixed, disjoint halves by a rule that never changes
between runs: a scene whose id is even is in the `tune` half, odd in `confirm`.
Configurations are compared on the tune half, and the one chosen there is
judged on the confirm half, by the paired bootstrap interval of its per-query
AP minus the baseline's on the same queries. It becomes the default only when
that interval lies above zero, near-duplicate recall does not fall, and its
time cost is stated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HALVES = ("tune", "confirm")
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


def half_of_scene(scene: int) -> str:
    """The fixed split: even scene ids tune, odd ones confirm."""
    return HALVES[scene % 2]


def split_by_scene(scenes: np.ndarray) -> dict[str, np.ndarray]:
    """{half: the rows (photo positions) whose scene is in that half}; every scene lies wholly in one half."""
    halves = np.array([half_of_scene(int(scene)) for scene in scenes])
    return {half: np.flatnonzero(halves == half) for half in HALVES}


@dataclass(frozen=True)
class PairedDifference:
    """Mean of (candidate − baseline) over the same queries, with a percentile bootstrap interval."""

    mean: float
    low: float
    high: float
    better: int  # queries where the candidate scores higher
    worse: int

    @property
    def above_zero(self) -> bool:
        return self.low > 0

    def __str__(self) -> str:
        return f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def paired_bootstrap(candidate: np.ndarray, baseline: np.ndarray, *, level: float = 0.95,
                     resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> PairedDifference:
    """Bootstrap the mean per-query difference, resampling queries (pairs), never the two sides apart.

    `candidate[i]` and `baseline[i]` must be the same query's scores: pairing
    removes the spread between easy and hard queries, which both sides share.
    """
    candidate, baseline = np.asarray(candidate, float), np.asarray(baseline, float)
    if candidate.shape != baseline.shape or candidate.ndim != 1 or len(candidate) == 0:
        raise ValueError(f"need one score per query on each side, got shapes {candidate.shape} and {baseline.shape}")
    differences = candidate - baseline
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(differences), (resamples, len(differences)))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return PairedDifference(float(differences.mean()), float(low), float(high),
                            int((differences > 0).sum()), int((differences < 0).sum()))
