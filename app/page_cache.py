"""Rendered pages (and photo cards), kept per worker: the index never changes while the app runs, so neither do they.

Rendering a photo page costs several times what Flask and gunicorn spend on
a request. A page a view has marked with `keep_response` is kept, whole, by
`with_page_cache`, a WSGI layer in front of Flask, and the next request for
the same URL is answered from there: a dict lookup, less than Flask's own
dispatch of an empty page. The cache keeps the most recently used entries
within a budget of bytes, not of entries: a gallery page of 200 cards is ten
times a photo page, and memory is what a dyno runs out of.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import request

DEFAULT_BUDGET_MB = 64  # per worker: about every photo page of a 10k-photo collection
_ENTRY_OVERHEAD = 200  # bytes of key, object headers and dict slot, roughly
_KEEP = "lookalike.keep_response"  # WSGI environ key: set by a view whose response may be kept


class RenderedPages:
    """Least recently used entries dropped first, to stay within `max_bytes`."""

    def __init__(self, max_bytes: int = DEFAULT_BUDGET_MB * 2**20):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()  # for threaded workers; uncontended in sync ones

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: Any, size: int) -> None:
        """Keep `value`, said to take `size` bytes, unless it alone is over the budget."""
        size += _ENTRY_OVERHEAD
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self.bytes -= previous[1]
            if size > self.max_bytes:
                return
            self._entries[key] = (value, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self.bytes -= evicted

    def get_or_render(self, key: Hashable, render: Callable[[], str]) -> str:
        """The text kept under `key`, or `render()`'s result, kept while within the budget."""
        page = self.get(key)
        if page is None:
            page = render()
            self.put(key, page, len(page))
        return page


@dataclass(frozen=True)
class _KeptResponse:
    headers: tuple[tuple[str, str], ...]
    body: bytes
    still_valid: Callable[[], bool]


def keep_response(still_valid: Callable[[], bool] = lambda: True) -> None:
    """Let `with_page_cache` answer later requests for this URL with this request's response.

    A view calls it only for a page that depends on nothing but its URL and
    the index, and on `still_valid()`, which is asked again before each reuse.
    """
    request.environ[_KEEP] = still_valid


def with_page_cache(
    wsgi_app: Callable, pages: Callable[[], RenderedPages], may_reuse: Callable[[dict], bool] | None = None
) -> Callable:
    """WSGI middleware: answer a GET for a kept page from `pages()`, and keep the pages views mark.

    With `may_reuse`, a kept page is answered only to requests it approves
    (a private gallery's signed-in browsers); the others go to the app.
    A response that sets a cookie is never kept: it belongs to one visitor.
    """

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET":
            return wsgi_app(environ, start_response)
        store = pages()
        key = (environ.get("SCRIPT_NAME", ""), environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
        kept: _KeptResponse | None = store.get(key)
        if kept is not None and kept.still_valid() and (may_reuse is None or may_reuse(environ)):
            start_response("200 OK", list(kept.headers))
            return [kept.body]
        sent = {}

        def remember_headers(status: str, headers: list, exc_info=None):
            sent["status"], sent["headers"] = status, tuple(headers)
            return start_response(status, headers, exc_info)

        chunks = wsgi_app(environ, remember_headers)
        still_valid = environ.get(_KEEP)
        if (
            still_valid is None
            or not sent.get("status", "").startswith("200 ")
            or any(name.lower() == "set-cookie" for name, _ in sent["headers"])
        ):
            return chunks
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        store.put(key, _KeptResponse(sent["headers"], body, still_valid), len(body))
        return [body]

    return application
