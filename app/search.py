"""Query by upload: embed a visitor's photo exactly as the index embedded its photos.

The pipeline is reached through one function, `precompute.query.load_describer`:
photo bytes in, descriptor out, through the same decode, crops and runner
(ONNX Runtime on a CPU) that indexing used. It needs torch, so search is
optional: it is on only when the precompute dependencies are installed, the
index's model loads and LOOKALIKE_SEARCH is not `off`. Torch is imported on
first use, never when the app starts, and the model is loaded once per worker
process, under a lock, so concurrent first queries load it once.

Each search is bounded. An upload's size is read from its header and refused
over UPLOAD_MAX_PIXELS, and a JPEG's scans are counted and refused over
core.jpeg_scans.MAX_SCANS, before anything is decoded (JPEGs are then
decoded at reduced size). These header checks come first, so such an upload
is refused even while the worker is busy. A worker runs at most LOOKALIKE_SEARCHES_PER_WORKER searches at
once (default 1; more get a 503 at once), each on LOOKALIKE_SEARCH_THREADS
threads (default 1), so searches cannot take every core from the pages
and a worker's memory is bounded by one search's worst case per slot.
"""

from __future__ import annotations

import importlib.util
import io
import threading
import warnings

import numpy as np
from PIL import Image

from core.formats import register_decoders
from core.index_file import ModelInfo
from core.jpeg_scans import TooManyScans, check_scan_count

SEARCH_SETTINGS = ("auto", "off")  # LOOKALIKE_SEARCH: on where it can work, or off

# What `precompute.scan` indexes and Pillow reads, by what Pillow says the
# content is (never by the file name or the client's content type): phones'
# HEIC and AVIF too, through the plugins core.formats registers.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF")
ACCEPTED_FORMATS_TEXT = "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC or AVIF"
# Far below indexing's 200 MP (precompute.decode.MAX_PIXELS): a visitor's upload
# is decoded in a web worker, and 40 MP covers every camera's full frame.
UPLOAD_MAX_PIXELS = 40_000_000
DEFAULT_SEARCHES_PER_WORKER = 1
DEFAULT_SEARCH_THREADS = 1


class SearchError(Exception):
    """A search that cannot be answered; the message says why, `status` is the HTTP status."""

    status = 400


class UploadRejected(SearchError):
    """The upload is not a photo we can search with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class SearchUnavailable(SearchError):
    """Search is off in this deployment."""

    status = 503


class SearchBusy(SearchError):
    """This worker already runs as many searches as it may."""

    status = 503


class QueryEmbedder:
    """Turns uploaded image bytes into a unit-length embedding comparable with the index's."""

    def __init__(
        self,
        model_info: ModelInfo,
        embedding_width: int | None = None,
        setting: str = "auto",
        threads: int = DEFAULT_SEARCH_THREADS,
        searches_per_worker: int = DEFAULT_SEARCHES_PER_WORKER,
    ):
        self.model_info = model_info
        self._lock = threading.Lock()
        self._describe = None  # photo bytes -> descriptor, once loaded (precompute.query)
        self.threads = threads
        self._slots = threading.BoundedSemaphore(searches_per_worker)
        self._unavailable: str | None = (
            ("Search by photo is turned off on this server (LOOKALIKE_SEARCH=off)." if setting == "off" else None)
            or _missing_dependencies()
            or (None if model_info.preprocessing else "Search by photo is off: the index does not record its preprocessing.")
        )
        if self._unavailable is None and embedding_width is not None and embedding_width != model_info.dim:
            self._unavailable = (
                f"Search by photo is off: the index holds {embedding_width}-d embeddings, "
                f"but its model {model_info.name!r} gives {model_info.dim}-d ones."
            )

    @property
    def unavailable_reason(self) -> str | None:
        """None while search may work; otherwise why it is off."""
        return self._unavailable

    def embed(self, data: bytes) -> np.ndarray:
        """Embed one uploaded photo. Raises UploadRejected or SearchUnavailable."""
        if self._unavailable is not None:
            raise SearchUnavailable(self._unavailable)
        check_upload(data)  # before the slot: a bomb gets its 4xx even while another search runs
        if not self._slots.acquire(blocking=False):
            raise SearchBusy("The server is busy with other searches; try again in a moment.")
        try:
            describe = self._loaded_describer()
            from precompute.query import UnreadablePhoto

            try:
                return describe(data)
            except UnreadablePhoto as err:
                raise UploadRejected(422, f"The photo cannot be read: {err}.") from None
        finally:
            self._slots.release()

    def _loaded_describer(self):
        """The index's describer, loaded on first use; later calls never wait on the lock."""
        if self._describe is not None:
            return self._describe
        with self._lock:
            if self._unavailable is not None:
                raise SearchUnavailable(self._unavailable)
            if self._describe is None:
                try:
                    self._describe = _load_describer(self.model_info, self.threads)
                except SearchUnavailable as err:
                    self._unavailable = str(err)
                    raise
        return self._describe


def _missing_dependencies() -> str | None:
    """Checked without importing anything, so an app without torch starts as fast as ever."""
    for module in ("torch", "torchvision"):
        if importlib.util.find_spec(module) is None:
            return (
                f"Search by photo is off: this server does not have {module} installed "
                "(it needs requirements-precompute.txt, which the web runtime leaves out)."
            )
    return None


def _load_describer(model_info: ModelInfo, threads: int):
    """The index's own model, loaded the way precompute loaded it, on a deliberate share of the cores."""
    from precompute.query import DescriberUnavailable, load_describer

    try:
        return load_describer(model_info, threads)
    except DescriberUnavailable as err:
        raise SearchUnavailable(f"Search by photo is off: {err}.") from None


def check_upload(data: bytes) -> None:
    """Refuse what is not a photo, or too large to decode, from its header alone (Pillow, no pipeline)."""
    if not data:
        raise UploadRejected(400, "The uploaded file is empty.")
    register_decoders()  # HEIC's container header is read like any other
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, on a lower budget
            with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as header:  # reads the header, decodes nothing
                width, height = header.size
    except Image.UnidentifiedImageError:
        raise UploadRejected(415, f"That is not a photo. Upload a {ACCEPTED_FORMATS_TEXT} image.") from None
    except (Image.DecompressionBombError, OSError, ValueError) as err:
        raise UploadRejected(422, f"The photo cannot be read: {err}") from None
    if width * height > UPLOAD_MAX_PIXELS:
        raise UploadRejected(
            422,
            f"The photo has {width} × {height} pixels, over the {UPLOAD_MAX_PIXELS // 10**6}-megapixel limit "
            "for search; it was not decoded (a possible decompression bomb).",
        )
    try:
        check_scan_count(data)
    except TooManyScans as err:
        raise UploadRejected(422, f"The photo is {err}.") from None
