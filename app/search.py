"""Query by upload: embed a visitor's photo exactly as the index embedded its photos.

This is the one part of the web app that needs torch, so it is optional: it
is on only when the precompute dependencies are installed and the index's
model loads. Torch is imported on first use, never when the app starts, and
the model is loaded once per worker process, under a lock, so concurrent
first queries load it once.

Each search is bounded. An upload's size is read from its header and refused
over UPLOAD_MAX_PIXELS before anything is decoded (JPEGs are then decoded at
reduced size). A worker runs at most LOOKALIKE_SEARCHES_PER_WORKER searches at
once (default 1; more get a 503 at once), each on LOOKALIKE_SEARCH_THREADS
torch threads (default 1), so searches cannot take every core from the pages
and a worker's memory is bounded by one search's worst case per slot.
"""

from __future__ import annotations

import importlib.util
import io
import os
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from precompute.decode import DecodeError
from precompute.preprocess import Preprocessing

# What `precompute.scan` indexes, by what Pillow says the content is (never by
# the file name or the client's content type).
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
ACCEPTED_FORMATS_TEXT = "JPEG, PNG, WebP, GIF, BMP or TIFF"
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


class SearchSettingError(Exception):
    """A LOOKALIKE_SEARCH* variable is not a positive whole number; the message says which."""


def _positive_int(variable: str, default: int) -> int:
    text = os.environ.get(variable, "") or str(default)
    if not (text.isascii() and text.isdigit() and int(text) >= 1):
        raise SearchSettingError(f"{variable} must be a whole number of 1 or more, not {text!r}")
    return int(text)


class QueryEmbedder:
    """Turns uploaded image bytes into a unit-length embedding comparable with the index's."""

    def __init__(self, model_info: dict, embedding_width: int | None = None):
        self.model_info = model_info
        self._lock = threading.Lock()
        self._features = None  # the torch module, once loaded
        self.threads = _positive_int("LOOKALIKE_SEARCH_THREADS", DEFAULT_SEARCH_THREADS)
        self._slots = threading.BoundedSemaphore(_positive_int("LOOKALIKE_SEARCHES_PER_WORKER", DEFAULT_SEARCHES_PER_WORKER))
        self.specs: list[Preprocessing] | None = _recorded_specs(model_info)
        self._unavailable: str | None = _missing_dependencies() or (
            None if self.specs else "Search by photo is off: the index does not record its preprocessing."
        )
        if self._unavailable is None and embedding_width is not None and embedding_width != model_info.get("dim"):
            self._unavailable = (
                f"Search by photo is off: the index holds {embedding_width}-d embeddings, "
                f"but its model {model_info.get('name')!r} gives {model_info.get('dim')}-d ones."
            )

    @property
    def unavailable_reason(self) -> str | None:
        """None while search may work; otherwise why it is off."""
        return self._unavailable

    def embed(self, data: bytes) -> np.ndarray:
        """Embed one uploaded photo. Raises UploadRejected or SearchUnavailable."""
        if self._unavailable is not None:
            raise SearchUnavailable(self._unavailable)
        if not self._slots.acquire(blocking=False):
            raise SearchBusy("The server is busy with other searches; try again in a moment.")
        try:
            pixels = model_inputs(data, self.specs)
            features = self._loaded_features()
            import torch

            from precompute.embed import embed_scales

            return embed_scales(features, [torch.from_numpy(p[None]) for p in pixels], torch.device("cpu"))[0]
        finally:
            self._slots.release()

    def _loaded_features(self):
        """The model's feature extractor, loaded on first use; later calls never wait on the lock."""
        if self._features is not None:
            return self._features
        with self._lock:
            if self._unavailable is not None:
                raise SearchUnavailable(self._unavailable)
            if self._features is None:
                import torch

                # A deliberate share of the cores: by default torch takes them all, in every worker at once.
                torch.set_num_threads(self.threads)
                try:
                    self._features = _load_features(self.model_info)
                except SearchUnavailable as err:
                    self._unavailable = str(err)
                    raise
        return self._features


def _missing_dependencies() -> str | None:
    """Checked without importing anything, so an app without torch starts as fast as ever."""
    for module in ("torch", "torchvision"):
        if importlib.util.find_spec(module) is None:
            return (
                f"Search by photo is off: this server does not have {module} installed "
                "(it needs requirements-precompute.txt, which the web runtime leaves out)."
            )
    return None


def _load_features(model_info: dict):
    """The index's own model, loaded the way precompute loaded it."""
    from precompute.models import ModelUnavailable, load_model

    name = model_info.get("name", "")
    try:
        model = load_model(
            name,
            _weights_file(model_info),
            model_info.get("pooling", "avg"),
            tuple(model_info.get("scales", ())),
            bool(model_info.get("flip", False)),
        )
    except ModelUnavailable as err:
        raise SearchUnavailable(f"Search by photo is off: the index's model {name!r} cannot be loaded ({err}).") from None
    if model.dim != model_info.get("dim"):
        raise SearchUnavailable(
            f"Search by photo is off: model {name!r} gives {model.dim}-d embeddings, the index holds {model_info.get('dim')}-d."
        )
    return model.features


def _weights_file(model_info: dict) -> Path | None:
    """The weights file the index was built with, when it came from `--weights FILE`."""
    source = str(model_info.get("weights", ""))
    return Path(source.removeprefix("file ")) if source.startswith("file ") else None


def _recorded_specs(model_info: dict) -> list[Preprocessing] | None:
    """The preprocessing per input scale the index was built with, or None if it was not recorded."""
    try:
        spec = dict(model_info["preprocessing"])
        spec["mean"], spec["std"] = tuple(spec["mean"]), tuple(spec["std"])
        base = Preprocessing(**spec)
        return [base.at_scale(int(scale)) for scale in model_info.get("scales") or (base.crop,)]
    except (KeyError, TypeError, ValueError):
        return None


def model_inputs(data: bytes, specs: list[Preprocessing]) -> list[np.ndarray]:
    """Check and decode an upload into the model's input, as `prepare_photo` does for indexed photos."""
    if not data:
        raise UploadRejected(400, "The uploaded file is empty.")
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
    from precompute.prepare import decode_for_model  # these resize with torch, which search needs anyway
    from precompute.resize import to_model_input

    try:
        decoded = decode_for_model(data, specs)
        return [to_model_input(decoded.image, spec) for spec in specs]
    except DecodeError as err:
        raise UploadRejected(422, f"The photo cannot be read: {err}.") from None
