"""Rendered pages (and photo cards), kept per worker: the index never changes while the app runs, so neither do they.

Rendering a photo page costs several times what Flask and gunicorn spend on
a request; serving it again from here costs a dict lookup. The cache keeps
the most recently used entries within a budget of bytes, not of entries: a
gallery page of 200 cards is ten times a photo page, and memory is what a
dyno runs out of.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

Html = TypeVar("Html", str, bytes)  # pages are kept encoded, cards as text
DEFAULT_BUDGET_MB = 64  # per worker: every photo page of a 10k-photo collection
_ENTRY_OVERHEAD = 200  # bytes of key, str header and dict slot, roughly


class RenderedPages:
    def __init__(self, max_bytes: int = DEFAULT_BUDGET_MB * 2**20):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._pages: OrderedDict[Hashable, str | bytes] = OrderedDict()
        self._lock = threading.Lock()  # for threaded workers; uncontended in sync ones

    def get_or_render(self, key: Hashable, render: Callable[[], Html]) -> Html:
        """The page cached under `key`, or `render()`'s result, cached while within the budget."""
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
                return page
        page = render()
        with self._lock:
            if key not in self._pages:
                self._pages[key] = page
                self.bytes += _size(page)
            while self.bytes > self.max_bytes:
                _, evicted = self._pages.popitem(last=False)
                self.bytes -= _size(evicted)
        return page


def _size(page: str | bytes) -> int:
    return len(page) + _ENTRY_OVERHEAD
