"""Which neighbour search a run uses: `--neighbours exact|approx|auto`.

`auto` is exact below AUTO_APPROX_FROM photos and approximate from there on,
where the IVF search wins clearly (benchmarks/README.md has the crossover).
Both return the same format: int32 ids and float32 scores, N × k, best first,
a photo never its own neighbour.
"""

from __future__ import annotations

import numpy as np

from precompute.neighbours.exact import top_k_neighbours

METHODS = ("exact", "approx", "auto")
AUTO_APPROX_FROM = 20_000


class ApproxUnavailable(Exception):
    """faiss, which the approximate search needs, is not installed."""


def check_approx_available() -> None:
    try:
        import faiss  # noqa: F401
    except ImportError:
        raise ApproxUnavailable(
            "the approximate neighbour search needs faiss: pip install -r requirements-precompute.txt, "
            "or use --neighbours exact"
        ) from None


def resolve_method(method: str, n: int) -> str:
    """`exact` or `approx`: what `method` means for a collection of n photos."""
    if method not in METHODS:
        raise ValueError(f"unknown neighbour search {method!r}; choose from {', '.join(METHODS)}")
    if method == "auto":
        return "approx" if n >= AUTO_APPROX_FROM else "exact"
    return method


def top_k(embeddings: np.ndarray, k: int, method: str = "exact") -> tuple[np.ndarray, np.ndarray]:
    """Each row's k most similar other rows, found by `method` (exact, approx or auto)."""
    if resolve_method(method, len(embeddings)) == "approx":
        check_approx_available()
        from precompute.neighbours.approximate import approximate_top_k

        return approximate_top_k(embeddings, k)
    return top_k_neighbours(embeddings, k)
