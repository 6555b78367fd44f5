"""Deploy archives of an index, and a local HTTP server standing in for S3, for the LOOKALIKE_INDEX_URL tests."""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

from core.index_file import read_index


def deploy_archive(index_path: Path, target: Path, extra: dict[str, bytes] | None = None) -> Path:
    """The deploy archive: `tar -C data -czf lookalike-data.tar.gz index.pkl index-thumbnails`, plus `extra` files."""
    thumbnails = index_path.parent / read_index(index_path).thumbnail_dir
    with tarfile.open(target, "w:gz") as tar:
        tar.add(index_path, arcname=index_path.name)
        tar.add(thumbnails, arcname=thumbnails.name)
        for name, data in (extra or {}).items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return target


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serving(folder: Path, handler: type[http.server.BaseHTTPRequestHandler] = QuietHandler) -> Iterator[str]:
    """Serve `folder` over HTTP on 127.0.0.1 from a thread; yield the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
