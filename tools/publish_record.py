"""What publish last put where, kept beside the index, so a rerun need not read and hash every file again.

At 100,000 photos a rerun with --originals would otherwise read every
original (hundreds of GB) just to find that nothing changed. An object is
skipped without reading its file when both hold:
- the file's size and modification time are those recorded when its bytes
  were hashed (the rule `python -m precompute` uses for photos), and
- the listing shows the object with the size and ETag recorded then: the
  store is still asked, so an object deleted or replaced there goes up again.

The record is a cache: without it (deleted, damaged, another machine) a rerun
reads and hashes every file, as the first run did. It is written atomically.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from core.atomic_write import atomic_file
from core.bucket import Listed

_VERSION = 1


def record_path(index_path: Path) -> Path:
    """`data/index.pkl` keeps its record in `data/index-published.json`."""
    index_path = Path(index_path)
    return index_path.with_name(index_path.stem + "-published.json")


class PublishRecord:
    """Per destination (endpoint, bucket and prefix): key -> the source file's state and the object it became."""

    def __init__(self, path: Path, destination: str):
        self.path, self.destination = Path(path), destination
        self._lock = threading.Lock()
        try:
            whole = json.loads(self.path.read_text(encoding="utf-8"))
            self._whole = whole if isinstance(whole, dict) and whole.get("version") == _VERSION else {}
        except (OSError, ValueError):  # none yet, or damaged: start afresh
            self._whole = {}
        self._whole["version"] = _VERSION
        destinations = self._whole.setdefault("destinations", {})
        kept = destinations.get(destination)
        self._entries: dict[str, list] = kept if isinstance(kept, dict) else {}
        destinations[destination] = self._entries

    def published(self, key: str, source: os.stat_result, strip_location: bool) -> Listed | None:
        """What the object should look like in a listing, if the source is as it was when it was hashed."""
        entry = self._entries.get(key)
        if not (isinstance(entry, list) and len(entry) == 5):
            return None
        size, mtime_ns, stripped, object_size, etag = entry
        if (size, mtime_ns, stripped) != (source.st_size, source.st_mtime_ns, strip_location):
            return None
        return Listed(object_size, etag)

    def remember(self, key: str, source: os.stat_result, strip_location: bool, listed: Listed) -> None:
        with self._lock:
            self._entries[key] = [source.st_size, source.st_mtime_ns, strip_location, listed.size, listed.etag]

    def save(self) -> None:
        """Write the record atomically (temporary file, then rename); OSError if the folder is not writable."""
        with self._lock:
            text = json.dumps(self._whole, separators=(",", ":"))
        # Owner-only: only publish reads it, and it names the destination; the web server never needs it.
        with atomic_file(self.path, "w", owner_only=True, durable=False, encoding="utf-8") as out:
            out.write(text)
