"""What one search by upload costs a worker: bombs refused from the header, and the largest photos accepted.

    .venv/bin/python -m benchmarks.upload_limits [--index INDEX]

Each upload is searched in a fresh process (`create_app` and its test client,
the model loaded by a first ordinary search), which reports the answer, the
seconds it took and how far the upload raised the process's peak resident
memory above what it held before (Linux's VmHWM, reset before each upload). Rows: 48-megapixel bombs of every accepted format (over
the 40 MP budget, under indexing's 200 MP), photos just under the budget in
the costliest modes, a progressive JPEG just under the budget with 10 scans
(as encoders write) and with MAX_SCANS (the most accepted, every one over all
components), the scan bomb (refused), and an ordinary photo for reference. Without --index it
builds the five-photo test index in a temporary folder first.

`--measure INDEX WARM FILE...` is the child's side; tests/test_search_limits.py runs it too.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from app.search import UPLOAD_MAX_PIXELS
from core.jpeg_scans import MAX_SCANS
from tests.support.hostile_photos import scan_bomb, write_upload_bombs
from tests.support.live_server import ROOT

BOMB = (8000, 6000)  # 48 MP
AT_BUDGET = (7300, 5470)  # 39.9 MP


def measure(index: Path, warm: Path, files: list[Path]) -> dict:
    """In this process: search `warm` (loads the model), then each file; answers, seconds and peak growth."""
    from app import create_app

    client = create_app(index).test_client()

    def post(name: str, data: bytes):
        return client.post("/api/search", data={"photo": (io.BytesIO(data), name)}, content_type="multipart/form-data")

    warm_status = post(warm.name, warm.read_bytes()).status_code
    uploads = [(path.name, path.read_bytes()) for path in files]
    answers = {}
    for name, data in uploads:
        before = _reset_peak_mib()
        started = time.perf_counter()
        response = post(name, data)
        answers[name] = {"status": response.status_code, "detail": (response.get_json() or {}).get("detail", ""),
                         "seconds": time.perf_counter() - started, "peak_growth_mib": _status_mib("VmHWM") - before}
    import torch

    return {"warm_status": warm_status, "answers": answers, "torch_threads": torch.get_num_threads()}


def _reset_peak_mib() -> float:
    """Reset this process's peak resident size to what it holds now (Linux: clear_refs 5); return that, MiB.

    ru_maxrss cannot be reset, and loading the model peaks higher than most uploads.
    """
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mib("VmRSS")


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def measured_in_a_fresh_process(index: Path, warm: Path, files: list[Path]) -> dict:
    command = [sys.executable, "-m", "benchmarks.upload_limits", "--measure", str(index), str(warm), *map(str, files)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"the measuring process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_at_budget(folder: Path) -> list[Path]:
    """Photos just under the budget in the modes that cost most to decode and convert."""
    width, height = AT_BUDGET
    ramp = np.tile(np.arange(width, dtype=np.uint32) % 256, (height, 1)).astype(np.uint8)
    rgba = np.dstack([ramp, ramp[::-1], ramp, ramp[:, ::-1]])
    photos = {
        "rgba.png": (Image.fromarray(rgba, "RGBA"), "PNG", {}),
        "grey16.png": (Image.fromarray(ramp.astype(np.uint16) * 257), "PNG", {}),
        "rgb.jpg": (Image.fromarray(rgba[..., :3], "RGB"), "JPEG", {}),
        "rgb.webp": (Image.fromarray(rgba[..., :3], "RGB"), "WEBP", {"lossless": True, "method": 0}),
        "palette.gif": (Image.fromarray(ramp, "L").convert("P"), "GIF", {}),
        "rgb.tif": (Image.fromarray(rgba[..., :3], "RGB"), "TIFF", {"compression": "tiff_deflate"}),
    }
    for name, (image, fmt, options) in photos.items():
        image.save(folder / name, fmt, **options)
    scans = {f"progressive-{n}-scans.jpg": scan_bomb(width, height, n - 10, "RGB") for n in (10, MAX_SCANS)}
    for name, data in scans.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in [*photos, *scans]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="index to search (default: build the five-photo test index)")
    parser.add_argument("--measure", nargs="+", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        index, warm, *files = args.measure
        print(json.dumps(measure(index, warm, files)))
        return 0
    with tempfile.TemporaryDirectory(prefix="lookalike-uploads-") as tmp:
        folder = Path(tmp)
        if args.index is None:
            from tests.support.tiny_index import build_tiny_index

            args.index = build_tiny_index(folder / "tiny")
        from core.index_file import read_index

        warm = Path(read_index(args.index).photo_root) / "alpha.jpg"
        rows = [(f"ordinary photo {warm.name}", warm)]
        (folder / "bombs").mkdir()
        bombs = write_upload_bombs(folder / "bombs", *BOMB)
        rows += [(f"{BOMB[0] * BOMB[1] / 1e6:.0f} MP bomb {path.name}", path) for path in bombs]
        (folder / "budget").mkdir()
        at_budget = write_at_budget(folder / "budget")
        rows += [(f"{AT_BUDGET[0] * AT_BUDGET[1] / 1e6:.1f} MP photo {path.name}", path) for path in at_budget]
        (folder / "scan-bomb.jpg").write_bytes(scan_bomb())
        rows.append(("36 MP scan bomb, 2006 scans", folder / "scan-bomb.jpg"))
        print(f"Search by upload, one fresh process per upload (budget {UPLOAD_MAX_PIXELS / 1e6:g} MP):")
        print(f"| {'upload':<40} | {'file':>10} | {'answer':>6} | {'seconds':>7} | {'peak memory growth':>18} |")
        print(f"|{'-' * 42}|{'-' * 12}|{'-' * 8}|{'-' * 9}|{'-' * 20}|")
        for label, path in rows:
            result = measured_in_a_fresh_process(args.index, warm, [path])["answers"][path.name]
            size = path.stat().st_size
            print(f"| {label:<40} | {size / 1e6:>7.2f} MB | {result['status']:>6} | "
                  f"{result['seconds']:>7.2f} | {result['peak_growth_mib']:>14.0f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
