"""Index files that are damaged, foreign or malicious: the app refuses to start, clearly, and runs nothing."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from app import create_app
from benchmarks.synthetic_index import as_format_1
from core.index_file import FORMAT_VERSION, MAX_K, MAX_PATH_BYTES, MAX_PATH_PARTS
from tests.support.index_samples import RunsCode, index_file_bytes, valid_index, with_path
from tests.support.live_server import free_port

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
STARTUP_FAILED = 4


def changed(edit: Callable[[dict], None]) -> bytes:
    index = valid_index().as_dict()  # the file's own layout, to damage
    edit(index)
    return index_file_bytes(index)


def columns(index: dict) -> dict:
    return index["photos"].columns


def with_code(marker: Path) -> bytes:
    index = valid_index().as_dict()
    index["created"] = RunsCode(marker)  # deep inside an otherwise valid index
    return index_file_bytes(index)


# name -> (file contents, given a marker path; words the error must contain)
HOSTILE: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "os.system via __reduce__": (with_code, "refusing to load"),
    "truncated pickle": (lambda m: index_file_bytes(valid_index())[:60], "damaged or not a Lookalike index"),
    "truncated data": (lambda m: index_file_bytes(valid_index())[:-100], "the file is truncated"),
    "format version 1": (lambda m: pickle.dumps(as_format_1(valid_index())),
                         "format version 1, from an older Lookalike; run `python -m precompute PHOTOS --out"),
    "empty file": (lambda m: b"", "damaged or not a Lookalike index"),
    "not a dict": (lambda m: pickle.dumps([1, 2, 3]), "no format marker"),
    "newer format version": (lambda m: changed(lambda i: i.update(version=FORMAT_VERSION + 1)), "version"),
    "embeddings rows": (lambda m: changed(lambda i: i.update(embeddings=i["embeddings"][:3])), "'embeddings' has 3 rows"),
    "embeddings 1-d": (lambda m: changed(lambda i: i.update(embeddings=i["embeddings"].ravel())), "'embeddings' must be a 2-d"),
    "embeddings float64": (lambda m: changed(lambda i: i.update(embeddings=i["embeddings"].astype(np.float64))), "float32"),
    "neighbours int64": (lambda m: changed(lambda i: i.update(neighbors=i["neighbors"].astype(np.int64))), "int32"),
    "neighbour id out of range": (lambda m: changed(lambda i: i["neighbors"].__setitem__((0, 0), 4)), "not in the index"),
    "negative neighbour id": (lambda m: changed(lambda i: i["neighbors"].__setitem__((1, 1), -1)), "not in the index"),
    "scores shape": (lambda m: changed(lambda i: i.update(scores=i["scores"][:, :1])), "'scores'"),
    "duplicate ids": (lambda m: changed(lambda i: columns(i)["id"].__setitem__(1, 0)), "unique"),
    "photos without thumbnails": (lambda m: changed(lambda i: columns(i).pop("thumbnail_key")), "'thumbnail_key'"),
    "path offsets past the paths": (lambda m: changed(lambda i: columns(i)["path_offsets"].__setitem__(-1, 99)),
                                    "'path_offsets' must rise"),
    "photos as a list of dicts": (lambda m: changed(lambda i: i.update(photos=list(i["photos"]))), "dict of columns"),
    "too many neighbours": (
        lambda m: changed(lambda i: i.update(neighbors=np.zeros((4, MAX_K + 1), np.int32), scores=np.zeros((4, MAX_K + 1), np.float32))),
        f"at most {MAX_K} are served",
    ),
    "thumbnail folder outside": (lambda m: changed(lambda i: i.update(thumbnail_dir="../../etc")), "'thumbnail_dir' must be"),
    "thumbnail folder absolute": (lambda m: changed(lambda i: i.update(thumbnail_dir="/etc")), "'thumbnail_dir' must be"),
    "thumbnail folder itself": (lambda m: changed(lambda i: i.update(thumbnail_dir=".")), "'thumbnail_dir' must be"),
    "photo root missing": (lambda m: changed(lambda i: i.pop("photo_root")), "'photo_root' must"),
    # Issue 24: these passed, then made every page (created) or /api/search (model) a 500.
    "created a list": (lambda m: changed(lambda i: i.update(created=[2026])), "'created' must be an ISO 8601 time"),
    "created a number": (lambda m: changed(lambda i: i.update(created=1_767_225_600)), "'created' must be an ISO 8601"),
    "created not a time": (lambda m: changed(lambda i: i.update(created="<b>" * 10_000)), "'created' must be an ISO"),
    "model name a list": (lambda m: changed(lambda i: i["model"].update(name=["resnet18"])), "'model' must describe"),
    "model scales a number": (lambda m: changed(lambda i: i["model"].update(scales=224)), "'model' 'scales' must be of type list"),
    "model scales junk": (lambda m: changed(lambda i: i["model"].update(scales=["x"])), "'model' 'scales' must be at most"),
    "model preprocessing text": (lambda m: changed(lambda i: i["model"].update(preprocessing="x")),
                                 "'model' 'preprocessing' must be of type dict"),
    "model pooling a dict": (lambda m: changed(lambda i: i["model"].update(pooling={})), "'model' 'pooling' must be"),
    # Paths the folder tree would grow quadratically from, or the file system refuse (ENAMETOOLONG).
    "path of 20,000 levels": (lambda m: index_file_bytes(with_path(valid_index(), 0, "a/" * 20_000 + "p.jpg")), f"at most {MAX_PATH_BYTES}"),
    "path of 100 short levels": (lambda m: index_file_bytes(with_path(valid_index(), 0, "a/" * 100 + "p.jpg")), f"at most {MAX_PATH_PARTS}"),
    "path over 4,096 bytes": (lambda m: index_file_bytes(with_path(valid_index(), 0, "x" * 200 + "/" + "y" * 4_000 + ".jpg")),
                              f"at most {MAX_PATH_BYTES}"),
}


@pytest.fixture
def hostile(request, tmp_path: Path) -> tuple[Path, Path, str]:
    make, words = HOSTILE[request.param]
    marker = tmp_path / "code-ran"
    path = tmp_path / "index.pkl"
    path.write_bytes(make(marker))
    return path, marker, words


def test_the_malicious_pickle_is_armed(tmp_path):
    """Plain pickle runs its command, so a missing marker below means the unpickler stopped it."""
    file = io.BytesIO(with_code(tmp_path / "ran"))
    pickle.load(file)  # the table of contents
    with contextlib.suppress(pickle.UnpicklingError):  # the command runs before the first data buffer is needed
        pickle.load(file)
    assert (tmp_path / "ran").exists()


def test_the_base_index_is_valid(tmp_path):
    """So each hostile case is refused for what it changes, not for something else."""
    path = tmp_path / "index.pkl"
    path.write_bytes(index_file_bytes(valid_index()))
    client = create_app(path).test_client()
    assert client.get("/healthz").json == {"status": "ok", "photos": 4}


@pytest.mark.parametrize("hostile", HOSTILE, indirect=True)
def test_create_app_refuses_it(hostile, capsys):
    path, marker, words = hostile
    with pytest.raises(SystemExit) as exit:
        create_app(path)
    assert exit.value.code == STARTUP_FAILED
    err = capsys.readouterr().err
    assert err.startswith("lookalike: cannot start: ") and words in err, err
    assert not marker.exists(), "the pickle ran code"


@pytest.mark.parametrize("preload", [True, False], ids=["Procfile", "bare-command"])
@pytest.mark.parametrize("hostile", ["os.system via __reduce__", "truncated pickle", "truncated data", "format version 1",
                                     "newer format version", "neighbour id out of range"], indirect=True)
@pytest.mark.slow
def test_gunicorn_refuses_it(hostile, preload):
    """A real gunicorn, as the Procfile runs it (--preload) and without the flag (gunicorn.conf.py preloads)."""
    path, marker, words = hostile
    command = [str(GUNICORN), "--bind", f"127.0.0.1:{free_port()}", "--workers", "2", "--no-control-socket"]
    command += ["--preload"] * preload + ["app:create_app()"]
    env = {**os.environ, "LOOKALIKE_INDEX": str(path)}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == STARTUP_FAILED
    assert result.stderr.count(f"lookalike: cannot start: {path}") == 1 and words in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists(), "the pickle ran code"
