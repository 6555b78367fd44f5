"""Instance evidence: do two photos show the same scene? RootSIFT matching checked by RANSAC. The one owner.

Both the re-ranking of similar lists (`precompute.rerank`) and duplicate
grouping use this module, so the features are extracted once per photo
(`extract_features`, in the prepare workers, while the photo is decoded
anyway) and every check goes through `verify`.

The stable API:

- `extract_features(rgb) -> LocalFeatures`: RootSIFT (OpenCV's SIFT, L1
  normalised, square-rooted, unit L2 length) of the photo scaled to at most
  `FEATURE_SIDE` pixels on its long side, at most `MAX_FEATURES` keypoints;
  descriptors stored as uint8 (`DESCRIPTOR_SCALE`), coordinates as float16
  pixels of that scaled image (`LocalFeatures.size`).
- `gray_thumbnail(rgb) -> uint8 (h, w)`: the photo in grey, at most
  `GRAY_SIDE` pixels on its long side, for checks of content after alignment.
- `verify(query, candidates, mirrored=...) -> list[Match]`: one query against
  many candidates, matched as matrix products (one GEMM per chunk of
  candidates), mutual nearest neighbours that pass Lowe's ratio test, then
  `cv2.estimateAffine2D` with RANSAC for each candidate with enough
  tentative matches (the others are rejected before RANSAC). A `Match`
  carries the inlier count and the 2×3 affine transform that maps the
  query's feature coordinates onto the candidate's.
- SIFT is invariant to rotation, so a photo turned by any angle (the four
  quarter turns included) matches without extra work; its transform says by
  how much (`Match.rotation_degrees`). A mirrored copy needs mirrored
  descriptors: `mirrored=True` also matches the query's mirror image, by
  permuting its descriptor bins (`mirror_descriptors`, no second
  extraction); the better of the two matchings is kept, and
  `Match.mirrored` says which.
- `picture_sameness(a, a_gray, b, b_gray) -> Sameness`: whether two photos
  are one picture (an edited copy), or two pictures of one scene; see "Same
  picture" below.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np
import torch

FEATURE_SIDE = 256  # long side of the image SIFT sees; larger photos are scaled down first
MAX_FEATURES = 400  # the strongest keypoints kept (docs/quality.md: what fewer cost)
DESCRIPTOR_SCALE = 512  # RootSIFT components (≤ 1, in practice ≤ 0.5) times this, rounded and clipped to uint8
GRAY_SIDE = 64  # long side of the grey thumbnail
RATIO = 0.8  # Lowe's ratio test, on distances
RANSAC_PIXELS = 8.0  # reprojection threshold, in pixels of the feature image
MIN_INLIERS = 8  # from this many inliers a pair counts as verified: the same scene or object
RANSAC_ITERATIONS = 2000  # at most; RANSAC stops sooner once 99 % sure of its best model
# A flat or dark photo (a sky, a darkened copy) has few keypoints at SIFT's contrast threshold (OpenCV's default,
# 0.04), too few to verify; one with fewer than FLAT_KEYPOINTS is detected again at FLAT_CONTRAST_THRESHOLD. Not every
# photo: more keypoints on all of them cost twice the matching (docs/quality.md).
CONTRAST_THRESHOLD = 0.04
FLAT_CONTRAST_THRESHOLD = 0.01
FLAT_KEYPOINTS = 100
_CHUNK = 16  # candidates per matrix product: bounds the similarity block to about n × 16 × MAX_FEATURES floats

_detectors: dict[float, cv2.SIFT] = {}  # per contrast threshold


@dataclass(frozen=True)
class LocalFeatures:
    """One photo's keypoints: positions in pixels of the feature image, uint8 RootSIFT descriptors."""

    points: np.ndarray  # (n, 2) float16: x, y
    descriptors: np.ndarray  # (n, 128) uint8
    size: tuple[int, int]  # width, height of the feature image the points refer to

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class Match:
    """How a candidate matched a query."""

    inliers: int  # matches consistent with `transform` (0 when no transform was found)
    tentative: int  # mutual nearest neighbours passing the ratio test
    transform: np.ndarray | None  # 2×3 float64 affine map, query feature pixels -> candidate feature pixels
    mirrored: bool = False  # the match is with the query's mirror image (the transform includes the reflection)

    @property
    def verified(self) -> bool:
        return self.inliers >= MIN_INLIERS

    @property
    def rotation_degrees(self) -> float | None:
        """The transform's rotation, counter-clockwise in image coordinates; None without a transform."""
        if self.transform is None:
            return None
        a, c = self.transform[0, 0], self.transform[1, 0]
        return float(np.degrees(np.arctan2(c, a)))

    @property
    def scale(self) -> float | None:
        """The transform's area scale, square-rooted: candidate size over query size."""
        if self.transform is None:
            return None
        return float(np.sqrt(abs(np.linalg.det(self.transform[:, :2]))))


NO_MATCH = Match(0, 0, None)


def _detect(gray: np.ndarray, contrast: float) -> tuple:
    """SIFT keypoints and descriptors, the strongest MAX_FEATURES; (), None where there are none."""
    if contrast not in _detectors:
        _detectors[contrast] = cv2.SIFT_create(nfeatures=MAX_FEATURES, contrastThreshold=contrast)
    try:
        return _detectors[contrast].detectAndCompute(gray, None)
    except cv2.error:  # e.g. a photo of a few pixels: no features, not a failed photo
        return (), None


def feature_image(rgb: np.ndarray) -> np.ndarray:
    """The photo in grey, scaled down to at most FEATURE_SIDE on its long side."""
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    return _shrink(gray, FEATURE_SIDE)


def gray_thumbnail(rgb: np.ndarray) -> np.ndarray:
    """The photo in grey, at most GRAY_SIDE pixels on its long side (uint8, h × w)."""
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    return _shrink(gray, GRAY_SIDE)


def _shrink(gray: np.ndarray, side: int) -> np.ndarray:
    height, width = gray.shape
    if max(height, width) <= side:
        return np.ascontiguousarray(gray)
    factor = side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def extract_features(rgb: np.ndarray) -> LocalFeatures:
    """RootSIFT of a uint8 RGB (or grey) photo; see the module docstring for the scale and the cap."""
    gray = feature_image(rgb)
    size = (gray.shape[1], gray.shape[0])
    keypoints, descriptors = _detect(gray, CONTRAST_THRESHOLD)
    if len(keypoints) < FLAT_KEYPOINTS:
        keypoints, descriptors = _detect(gray, FLAT_CONTRAST_THRESHOLD)
    if descriptors is None or not keypoints:
        return LocalFeatures(np.zeros((0, 2), np.float16), np.zeros((0, 128), np.uint8), size)
    keypoints, descriptors = keypoints[:MAX_FEATURES], descriptors[:MAX_FEATURES]
    points = np.array([kp.pt for kp in keypoints], np.float32).astype(np.float16)
    return LocalFeatures(points, quantise(root_sift(descriptors)), size)


def root_sift(descriptors: np.ndarray) -> np.ndarray:
    """SIFT to RootSIFT (Arandjelović & Zisserman 2012): L1-normalise, square-root; rows come out of unit L2 length."""
    descriptors = descriptors.astype(np.float32)
    descriptors /= np.maximum(descriptors.sum(axis=1, keepdims=True), 1e-7)
    return np.sqrt(descriptors)


def quantise(root: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(root * DESCRIPTOR_SCALE), 0, 255).astype(np.uint8)


# OpenCV's SIFT descriptor is 4 × 4 cells (row-major, y then x, in the keypoint's rotated frame) of 8 orientation
# bins. Mirroring the image mirrors the keypoint's frame about its own x axis (its dominant orientation): cell rows
# swap (y -> 3 - y) and each gradient angle θ becomes -θ (bin o -> (8 - o) mod 8). tests/test_verification.py
# checks this against descriptors extracted from the flipped image.
_MIRROR = np.array([((3 - y) * 4 + x) * 8 + (8 - o) % 8 for y in range(4) for x in range(4) for o in range(8)])


def mirror_descriptors(descriptors: np.ndarray) -> np.ndarray:
    """Each descriptor as it would be extracted from the mirror image of the photo (a permutation of its bins)."""
    return descriptors[:, _MIRROR]


def verify(query: LocalFeatures, candidates: Sequence[LocalFeatures], *, mirrored: bool = False,
           min_tentative: int | None = None) -> list[Match]:
    """Match `query` against each candidate; one Match per candidate, in order.

    Candidates with fewer than `min_tentative` (default MIN_INLIERS) tentative
    matches are rejected before RANSAC (they could not reach that many inliers). With `mirrored`,
    the query's mirror image is matched too and the better result kept.
    """
    results = [NO_MATCH] * len(candidates)
    if len(query) < 3 or not candidates:
        return results
    views = [(_as_unit(query.descriptors), False)]
    if mirrored:
        views.append((_as_unit(mirror_descriptors(query.descriptors)), True))
    query_points = query.points.astype(np.float32)
    min_tentative = MIN_INLIERS if min_tentative is None else min_tentative
    with _one_thread():
        for start in range(0, len(candidates), _CHUNK):
            chunk = list(candidates[start:start + _CHUNK])
            block, lengths = _stack(chunk)
            for descriptors, is_mirror in views:
                pairs = _tentative_matches(descriptors, block, lengths)
                for offset, (query_rows, candidate_rows) in enumerate(pairs):
                    position = start + offset
                    match = _geometry(query_points, chunk[offset], query_rows, candidate_rows, min_tentative, is_mirror)
                    if (match.inliers, match.tentative) > (results[position].inliers, results[position].tentative):
                        results[position] = match
    return results


@contextmanager
def _one_thread():
    """These products are small (hundreds × thousands): a second BLAS thread spins more CPU than it saves
    (benchmarks/README.md). numpy's BLAS has no thread setting, so the products run in torch."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _as_unit(descriptors: np.ndarray) -> torch.Tensor:
    """Stored descriptors as float32, scaled so that a product with `_stack`'s rows is a cosine.

    RootSIFT rows have unit length before quantisation, so the uint8 rows have
    length DESCRIPTOR_SCALE up to rounding: no per-row normalisation is needed.
    """
    return torch.from_numpy(descriptors.astype(np.float32) * (1.0 / DESCRIPTOR_SCALE**2))


def _stack(chunk: list[LocalFeatures]) -> tuple[torch.Tensor, np.ndarray]:
    """The chunk's descriptors as one (128, c × m) float32 matrix, each candidate's rows padded with zeros to m."""
    lengths = np.array([len(features) for features in chunk])
    width = max(1, int(lengths.max()))
    block = np.zeros((128, len(chunk), width), np.float32)
    for slot, features in enumerate(chunk):
        block[:, slot, :len(features)] = features.descriptors.T
    return torch.from_numpy(block.reshape(128, -1)), lengths


def _tentative_matches(query: torch.Tensor, block: torch.Tensor, lengths: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per candidate, (query rows, candidate rows) of mutual nearest neighbours that pass the ratio test.

    One matrix product for the whole chunk; then three passes over it: the
    best match of each candidate row (for mutuality), the best and the second
    best of each query row in each candidate. Padding rows are zero vectors:
    similarity 0, never better than a real match (RootSIFT is non-negative).
    """
    chunk = len(lengths)
    similarity = (query @ block).numpy().reshape(len(query), chunk, -1)
    column_best = similarity.max(axis=0)  # (chunk, m): each candidate row's best similarity to any query row
    best = similarity.argmax(axis=2)[:, :, None]  # (n, chunk, 1)
    best_similarity = np.take_along_axis(similarity, best, axis=2)
    np.put_along_axis(similarity, best, -1.0, axis=2)
    second_similarity = similarity.max(axis=2, keepdims=True)
    best, best_similarity, second_similarity = best[:, :, 0], best_similarity[:, :, 0], second_similarity[:, :, 0]
    # Unit vectors: distance² = 2 − 2·similarity. Ratio test on distances: d1 < RATIO · d2.
    passes = (1 - best_similarity) < RATIO**2 * (1 - second_similarity)
    mutual = best_similarity >= column_best[np.arange(chunk)[None, :], best]
    good = passes & mutual & (best < lengths[None, :]) & (best_similarity > 0)
    return [(np.flatnonzero(good[:, slot]), best[good[:, slot], slot]) for slot in range(chunk)]


def _geometry(query_points: np.ndarray, candidate: LocalFeatures, query_rows: np.ndarray, candidate_rows: np.ndarray,
              min_tentative: int, mirrored: bool) -> Match:
    tentative = len(query_rows)
    if tentative < max(3, min_tentative):
        return Match(0, tentative, None, mirrored)
    source = query_points[query_rows]
    target = candidate.points.astype(np.float32)[candidate_rows]
    transform, inlier_mask = cv2.estimateAffine2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS, maxIters=RANSAC_ITERATIONS, confidence=0.99
    )
    if transform is None or inlier_mask is None:
        return Match(0, tentative, None, mirrored)
    return Match(int(inlier_mask.sum()), tentative, transform, mirrored)


# --- Same picture (issue #21): is one photo an edited copy of the other? ------------------------------------------
#
# Two shots of one scene verify as "the same scene" above; a copy must pass more. Three kinds of evidence, all
# stored per photo (no second decode):
# 1. one *copy transform* explains the local features, tightly. A copy is the picture scaled (by one factor on both
#    axes), cropped or padded, mirrored or not and turned by quarter turns: an affine map whose linear part is a
#    scale times a signed permutation (`copy_transform`). It is fitted to the inliers of the affine match, and the
#    median error of those inliers, in the smaller photo's pixels, must be small. A camera moved between two shots
#    turns the picture by a degree or so, tilts it, and shifts near things against far ones: an affine map absorbs
#    much of that (most re-shots fit one to a fraction of a pixel), a copy transform does not;
# 2. after that alignment, the grey thumbnails agree up to a global monotone tone curve (grayscale, brightness and
#    contrast), in both photos' frames: a moved subject, another moment or another viewpoint leaves pixels that no
#    tone curve explains. A band along an edge that disagrees (a caption) is left out first;
# 3. SSCD copy-descriptor similarity, where both photos have it.
# The thresholds are chosen on the tune half of `python -m tools.evaluate.duplicate_threshold` (docs/quality.md).
# A copy turned by another angle than a quarter turn (a straightened horizon) or stretched to another aspect ratio
# is not found: the price of telling copies from re-shots.

SAME_MIN_INLIERS = 12  # held, not chosen: 8 (MIN_INLIERS) chained a quarter-size copy to another shot (docs/quality.md)
SAME_MAX_ERROR = 0.4  # median inlier error of the copy transform, pixels of the smaller feature image
SAME_MAX_DISAGREEMENT = 0.035  # share of the overlap's thumbnail pixels no global tone curve explains
SAME_MIN_SSCD = 0.5  # SSCD cosine, where both photos have one
_TONE_LEVELS = 24  # a thumbnail pixel this far (of 255) from the tone curve's value disagrees
_TONE_BINS = 32
_BAND_SHARE = 0.15  # an edge row or column with more disagreeing pixels than this is an overlaid band...
_MAX_BAND = 0.25  # ...up to this share of the thumbnail's side
_RESOLUTION_BLUR = 0.4  # sigma, in its pixels, per unit of the extra detail a thumbnail shows (`_blur`)
# Everything a verdict depends on besides the two photos' evidence (an index keeps it with its pairs).
SAME_PICTURE_SETTINGS = {
    "min_inliers": SAME_MIN_INLIERS, "max_error": SAME_MAX_ERROR, "max_disagreement": SAME_MAX_DISAGREEMENT,
    "min_sscd": SAME_MIN_SSCD, "transform": "copy: scale, shift, signed permutation", "ratio": RATIO,
    "ransac_pixels": RANSAC_PIXELS, "tone_levels": _TONE_LEVELS, "tone_bins": _TONE_BINS, "band_share": _BAND_SHARE,
    "max_band": _MAX_BAND, "band": "out to the farthest disagreeing line", "resolution_blur": _RESOLUTION_BLUR,
}


@dataclass(frozen=True)
class Sameness:
    """The evidence that two photos are one picture; `same` applies the thresholds."""

    inliers: int
    error: float  # median inlier error of the copy transform, pixels of the smaller feature image (inf without one)
    disagreement: float  # share of overlapping thumbnail pixels off the tone curve, the worse of the two frames
    sscd: float | None = None  # cosine of the SSCD descriptors, when both photos have one

    def same(self, min_inliers: int = SAME_MIN_INLIERS, max_error: float = SAME_MAX_ERROR,
             max_disagreement: float = SAME_MAX_DISAGREEMENT, min_sscd: float = SAME_MIN_SSCD) -> bool:
        return (self.inliers >= min_inliers and self.error <= max_error and self.disagreement <= max_disagreement
                and (self.sscd is None or self.sscd >= min_sscd))

    def different(self, min_inliers: int = SAME_MIN_INLIERS, max_error: float = SAME_MAX_ERROR) -> bool:
        """Two pictures of one scene: matched by as many inliers as a copy needs, and no copy transform fits them.
        (Thumbnails that disagree are no such evidence: two crops of one picture may share too little to compare.)"""
        return self.inliers >= min_inliers and self.error > max_error


NOT_SAME = Sameness(0, float("inf"), 1.0)


def picture_sameness(a: LocalFeatures, a_gray: np.ndarray, b: LocalFeatures, b_gray: np.ndarray,
                     a_sscd: np.ndarray | None = None, b_sscd: np.ndarray | None = None) -> Sameness:
    """How far the stored evidence says `a` and `b` are one picture; the same whichever comes first."""
    if (a.descriptors.tobytes(), a.size) > (b.descriptors.tobytes(), b.size):  # one order: RANSAC's sample differs
        a, a_gray, a_sscd, b, b_gray, b_sscd = b, b_gray, b_sscd, a, a_gray, a_sscd
    match, copy, error = _tight_match(a, b)
    if copy is None or match.inliers < 3:
        return NOT_SAME
    forward = _affine_3x3(copy)
    to_gray_a, to_gray_b = _gray_scale(a, a_gray), _gray_scale(b, b_gray)
    in_b = to_gray_b @ forward @ np.linalg.inv(to_gray_a)  # a's thumbnail pixels -> b's
    disagreement = max(tone_disagreement(a_gray, b_gray, in_b), tone_disagreement(b_gray, a_gray, np.linalg.inv(in_b)))
    sscd = None
    if a_sscd is not None and b_sscd is not None:
        sscd = float(np.dot(a_sscd.astype(np.float32), b_sscd.astype(np.float32)))
    return Sameness(match.inliers, error, disagreement, sscd)


def _tight_match(query: LocalFeatures, candidate: LocalFeatures) -> tuple[Match, np.ndarray | None, float]:
    """The better of the plain and mirrored matchings, the copy transform fitted to its inliers, and their median
    error under it in the smaller image's pixels (None and inf without a match)."""
    if len(query) < 3 or len(candidate) < 3:
        return NO_MATCH, None, float("inf")
    block, lengths = _stack([candidate])
    points = query.points.astype(np.float64)
    best, best_copy, best_error = NO_MATCH, None, float("inf")
    for is_mirror in (False, True):
        descriptors = mirror_descriptors(query.descriptors) if is_mirror else query.descriptors
        with _one_thread():
            (query_rows, candidate_rows), = _tentative_matches(_as_unit(descriptors), block, lengths)
        match = _geometry(points.astype(np.float32), candidate, query_rows, candidate_rows, MIN_INLIERS, is_mirror)
        if match.transform is None or (match.inliers, match.tentative) <= (best.inliers, best.tentative):
            continue
        source, target = points[query_rows], candidate.points.astype(np.float64)[candidate_rows]
        inlying = np.linalg.norm(source @ match.transform[:, :2].T + match.transform[:, 2] - target, axis=1) <= RANSAC_PIXELS
        if inlying.sum() < 3:
            continue
        copy, errors = copy_transform(source[inlying], target[inlying], match.transform[:, :2])
        scale = float(np.sqrt(abs(np.linalg.det(copy[:, :2]))))  # errors are in the candidate's pixels: a larger candidate divides
        best, best_copy, best_error = match, copy, float(np.median(errors)) / max(scale, 1.0)
    return best, best_copy, best_error


def copy_transform(source: np.ndarray, target: np.ndarray, linear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The copy transform nearest the affine map's `linear` part, least-squares fitted to the matched points.

    Returns the 2×3 map (source pixels -> target pixels) and each point's
    error under it. The quarter turn and the mirror are those of `linear`'s
    nearest rotation or reflection (`_signed_permutation`); in its frame the
    map is one scale and a shift, fitted in closed form.
    """
    turn = _signed_permutation(linear)
    turned = target @ turn  # each target point turned back: turn.T @ point
    source_mean, turned_mean = source.mean(axis=0), turned.mean(axis=0)
    spread = float(((source - source_mean) ** 2).sum())
    scale = float(((source - source_mean) * (turned - turned_mean)).sum()) / max(spread, 1e-12)
    transform = np.hstack([scale * turn, (turn @ (turned_mean - scale * source_mean))[:, None]])
    errors = np.linalg.norm(source @ transform[:, :2].T + transform[:, 2] - target, axis=1)
    return transform, errors


def _signed_permutation(linear: np.ndarray) -> np.ndarray:
    """The quarter turn, mirrored or not, nearest a 2×2 linear map: its polar rotation rounded to 0, ±1 entries."""
    left, _, right = np.linalg.svd(linear)
    rotation = left @ right
    if abs(rotation[0, 0]) + abs(rotation[1, 1]) >= abs(rotation[0, 1]) + abs(rotation[1, 0]):
        return np.diag([np.sign(rotation[0, 0]) or 1.0, np.sign(rotation[1, 1]) or 1.0])
    return np.array([[0.0, np.sign(rotation[0, 1]) or 1.0], [np.sign(rotation[1, 0]) or 1.0, 0.0]])


def _affine_3x3(transform: np.ndarray) -> np.ndarray:
    return np.vstack([transform, [0.0, 0.0, 1.0]])


def _gray_scale(features: LocalFeatures, gray: np.ndarray) -> np.ndarray:
    """Feature-image pixels -> grey-thumbnail pixels (both are scalings of the same decoded photo).

    Pixel centres map to pixel centres (x + ½ scales), or a mirror image would be off by most of a pixel.
    """
    width, height = features.size
    sx, sy = gray.shape[1] / max(width, 1), gray.shape[0] / max(height, 1)
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


def tone_disagreement(moving: np.ndarray, fixed: np.ndarray, moving_to_fixed: np.ndarray) -> float:
    """The share of `fixed`'s pixels covered by `moving` (warped by the 3×3 map) that no monotone tone curve explains.

    Both thumbnails are blurred a little (resampling and compression differ
    at 64 px), the one that shows the overlap in more pixels (a crop's) a
    little more, to the other's resolution; the tone curve is the monotone
    (isotonic) fit of `fixed` on `moving`, over 32 bins of grey. Rows and columns along an edge that
    disagree as a whole (a caption band) are left out first, up to a quarter
    of each side. 1.0 when too little overlaps to tell.
    """
    height, width = fixed.shape
    warp = moving_to_fixed[:2].astype(np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(warp[:, :2]))))  # fixed pixels per moving pixel
    moving = cv2.GaussianBlur(moving.astype(np.float32), (0, 0), _blur(1.0 / max(scale, 1e-6)))
    fixed = cv2.GaussianBlur(fixed.astype(np.float32), (0, 0), _blur(scale))
    warped = cv2.warpAffine(moving, warp, (width, height), flags=cv2.INTER_LINEAR)
    covered = cv2.warpAffine(np.ones(moving.shape, np.uint8), warp, (width, height), flags=cv2.INTER_NEAREST)
    covered = cv2.erode(covered, np.ones((3, 3), np.uint8)) > 0
    if covered.sum() < 0.05 * covered.size or covered.sum() < 64:
        return 1.0
    kept = covered
    for _ in range(2):  # fit, find the bands, fit again without them: a black band would bend the curve
        bins = np.minimum((warped[kept] * (_TONE_BINS / 256.0)).astype(np.int64), _TONE_BINS - 1)
        curve = _isotonic_means(bins, fixed[kept])
        everywhere = np.minimum((warped * (_TONE_BINS / 256.0)).astype(np.int64), _TONE_BINS - 1)
        off = covered & (np.abs(fixed - curve[everywhere]) > _TONE_LEVELS)
        kept = covered & ~_edge_bands(off, covered)
    return float(off[kept].sum() / kept.sum()) if kept.sum() >= 64 else 1.0


def _blur(detail: float) -> float:
    """The Gaussian sigma for a thumbnail that shows the overlap in `detail` times the other's pixels: one pixel,
    and where it holds more detail, as much more as takes it to the other's resolution."""
    return float(np.hypot(1.0, _RESOLUTION_BLUR * np.sqrt(max(detail**2 - 1.0, 0.0))))


def _isotonic_means(bins: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per bin, the monotone non-decreasing least-squares fit of `values` (pool adjacent violators over the bins)."""
    counts = np.bincount(bins, minlength=_TONE_BINS).astype(np.float64)
    sums = np.bincount(bins, values.astype(np.float64), minlength=_TONE_BINS)
    present = np.flatnonzero(counts)
    blocks: list[list[float]] = []  # [mean, weight, bins pooled]
    for count, total in zip(counts[present], sums[present]):
        blocks.append([total / count, count, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, weight, pooled = blocks.pop()
            blocks[-1] = [(blocks[-1][0] * blocks[-1][1] + mean * weight) / (blocks[-1][1] + weight),
                          blocks[-1][1] + weight, blocks[-1][2] + pooled]
    curve = np.zeros(_TONE_BINS)
    curve[present] = np.repeat([mean for mean, _, _ in blocks], [pooled for _, _, pooled in blocks])
    return curve


def _edge_bands(off: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """An overlaid band along each edge of the overlap: the rows (columns) from the edge out to the farthest, within
    _MAX_BAND, on which more than _BAND_SHARE of the pixels disagree. Not only lines that all disagree: a caption's
    plain parts may agree with the picture (black on dark grass)."""
    band = np.zeros(off.shape, bool)
    for axis in (0, 1):  # 0: rows, 1: columns
        shares = off.sum(axis=1 - axis) / np.maximum(covered.sum(axis=1 - axis), 1)
        lines = np.flatnonzero(covered.any(axis=1 - axis))
        limit = int(_MAX_BAND * len(shares))
        for ordered in (lines, lines[::-1]):
            disagreeing = np.flatnonzero(shares[ordered[:limit]] > _BAND_SHARE)
            taken = ordered[: disagreeing[-1] + 1] if len(disagreeing) else ordered[:0]
            if axis == 0:
                band[taken] = True
            else:
                band[:, taken] = True
    return band
