"""Rendered pages (and photo cards), kept per worker: the index never changes while the app runs, so neither do they.

Rendering a gallery page (48 cards) costs several times what Flask and
gunicorn spend on a request; serving it again from here costs a dict lookup.
The cache holds the most recently used pages up to a fixed count, so its
memory stays bounded however large the collection.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

DEFAULT_CAPACITY = 1024  # pages; a gallery page is about 25 KB of HTML, a photo page less


class RenderedPages:
    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        self.capacity = capacity
        self._pages: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()  # for threaded workers; uncontended in sync ones

    def get_or_render(self, key: Hashable, render: Callable[[], str]) -> str:
        """The page cached under `key`, or `render()`'s result, cached if there is room."""
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
                return page
        page = render()
        with self._lock:
            self._pages[key] = page
            if len(self._pages) > self.capacity:
                self._pages.popitem(last=False)
        return page
