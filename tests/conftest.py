"""Shared fixtures: small images made with OpenCV, seeded models built from ultralytics' YAML configs,
and a local http.server for URL inputs. Everything runs offline."""

from __future__ import annotations

import functools
import http.server
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Before anything imports ultralytics: no network probes, and weights looked up in a throwaway cache.
os.environ["YOLO_OFFLINE"] = "1"
os.environ.setdefault("DETECT_CACHE_DIR", str(Path(__file__).parent / ".cache-unused"))
# The CLI's default backend (auto) exports models on first use; tests ask for exports explicitly.
os.environ["DETECT_BACKEND"] = "torch"

SMALL_IMGSZ = 64
CONF = {"rtdetr": 0.01, "yolo": 1e-6}  # random weights score low: thresholds that still give boxes


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees (or writes) real cached weights."""
    monkeypatch.setenv("DETECT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session", autouse=True)
def _ultralytics_imported() -> None:
    # Import once with the real stderr bound to its logger, not a CliRunner's temporary stream.
    from detect_cli.models import import_ultralytics

    import_ultralytics()


def make_image(path: Path, seed: int = 0, size: tuple[int, int] = (96, 128), channels: int = 3) -> Path:
    """A small picture: noise with a few filled shapes, written in the format its suffix names."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    h, w = size
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    cv2.rectangle(img, (10, 10), (w // 2, h // 2), (0, 0, 255), -1)
    cv2.circle(img, (w * 3 // 4, h * 3 // 4), min(h, w) // 6, (0, 255, 0), -1)
    if channels == 1:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    elif channels == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img), path
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """A folder: a/x.jpg, b/x.jpg (same name), top.png and a nested c/d/deep.jpg."""
    root = tmp_path / "imgs"
    make_image(root / "a" / "x.jpg", 1)
    make_image(root / "b" / "x.jpg", 2)
    make_image(root / "top.png", 3)
    make_image(root / "c" / "d" / "deep.jpg", 4)
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def fake_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """{"rtdetr": path, "yolo": path}: weights files that load as the fake detector (tests/fakes.py),
    named like the seeded models, for tests of the plumbing rather than of the models."""
    from fakes import install

    return install(monkeypatch, tmp_path / "fake-weights")


@pytest.fixture
def fake_yolo(fake_models: dict[str, Path]) -> Path:
    """The fake `yolo11n-seed0.pt`: loads as the fake detector in-process, and in a child started with
    `fake_cli_argv`."""
    return fake_models["yolo"]


FAKE_CLI = Path(__file__).parent / "fake_cli.py"


def fake_cli_argv(*argv: object) -> list[str]:
    """`python -m detect_cli ARGV` for a real child process in which the `fake_models` files load as the
    fake detector (tests/fake_cli.py): no torch, no ultralytics, no model to build."""
    return [sys.executable, str(FAKE_CLI), *(str(a) for a in argv)]


def fake_cli_env(delay: float = 0.0) -> dict[str, str]:
    """The environment of such a child: unbuffered, and `delay` seconds spent by the fake on each picture
    (so that a run is still going when a test signals it)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "DETECT_FAKE_DELAY_S": str(delay)}


def _run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test run's own temporary folder, shared by its xdist workers."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None], wait: bool = True
) -> Path | None:
    """A folder `build` fills once per test run, shared by the run's xdist workers (the first one to
    get the lock builds it, the others wait and reuse it): seeded weights and exports are made once.
    With wait=False, None (at once) while another worker is building it."""
    import fcntl

    root = _run_folder(tmp_path_factory)
    folder = root / f"shared-{name}"
    with (root / f"shared-{name}.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        if not (folder / ".done").exists():
            folder.mkdir(exist_ok=True)
            build(folder)
            (folder / ".done").write_text("")
    return folder


def _save_seeded(tmp_path_factory: pytest.TempPathFactory, cfg: str, family: str) -> Path:
    name = cfg.replace(".yaml", "-seed0.pt")

    def build(folder: Path) -> None:
        import torch
        from ultralytics import RTDETR, YOLO

        torch.manual_seed(0)
        (RTDETR if family == "rtdetr" else YOLO)(cfg).save(folder / name)

    return built_once(tmp_path_factory, f"weights-{family}", build) / name  # type: ignore[operator]


@pytest.fixture(scope="session")
def rtdetr_pt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rtdetr-l built from its YAML with seed 0 and saved: real architecture, random weights."""
    return _save_seeded(tmp_path_factory, "rtdetr-l.yaml", "rtdetr")


@pytest.fixture(scope="session")
def exported(
    rtdetr_pt: Path, yolo_pt: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, list[str]]]:
    """A cache holding every (model, installed backend) export at SMALL_IMGSZ, and the warnings they gave;
    made once per test run (shared by the xdist workers). Each export is built once, by whichever worker
    gets to it first: a worker that finds one being built builds another meanwhile (two workers that
    need the cache at the same time share the work instead of one waiting for the other), then waits
    for the rest."""
    import json

    from detect_cli import backends
    from detect_cli.models import PredictOptions, resolve

    cache = _run_folder(tmp_path_factory) / "shared-exports"
    cache.mkdir(exist_ok=True)
    weights = {"rtdetr": rtdetr_pt, "yolo": yolo_pt}
    pairs = [(f, b) for f in ("rtdetr", "yolo") for b in backends.EXPORTED if backends.installed(b)]

    def builder(family: str, backend: str) -> Callable[[Path], None]:
        def build(folder: Path) -> None:
            warnings: list[str] = []
            options = PredictOptions(conf=CONF[family], imgsz=SMALL_IMGSZ, device="cpu", max_det=20)
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("DETECT_CACHE_DIR", str(cache))
                ref = resolve(str(weights[family]), family)  # type: ignore[arg-type]
                backends.load(ref, options, backends.plan(backend, "cpu"), warnings.append)
            (folder / "warnings.json").write_text(json.dumps(warnings))

        return build

    folders: dict[tuple[str, str], Path | None] = {}
    for family, backend in pairs:  # the exports no other worker is building, at once
        folders[family, backend] = built_once(
            tmp_path_factory, f"export-{family}-{backend}", builder(family, backend), wait=False
        )
    for family, backend in pairs:  # then those another worker was building: wait for them
        if folders[family, backend] is None:
            folders[family, backend] = built_once(
                tmp_path_factory, f"export-{family}-{backend}", builder(family, backend)
            )
    warnings = [w for f in folders.values() for w in json.loads((f / "warnings.json").read_text())]  # type: ignore[operator]
    yield cache, warnings


@pytest.fixture
def yolo_cache(exported: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache (DETECT_CACHE_DIR) holding the session's fp32 OpenVINO export of the seeded
    YOLO11n, for tests that add to it (INT8 quantizing)."""
    import json
    import shutil

    cache = tmp_path / "own-cache"
    for entry in (exported[0] / "exports").glob("[!.]*"):
        manifest = json.loads((entry / "manifest.json").read_text())
        if (manifest["family"], manifest["backend"]) == ("yolo", "openvino"):
            shutil.copytree(entry, cache / "exports" / entry.name)
    monkeypatch.setenv("DETECT_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def yolo_pt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_seeded(tmp_path_factory, "yolo11n.yaml", "yolo")


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/slow/"):
            time.sleep(2.0)  # longer than the tests' --url-timeout
        if self.path.startswith("/slow/"):
            self.path = self.path[len("/slow") :]
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    """A test server whose handler threads never print: a client that hangs up early (a time-out under
    test) would otherwise put a BrokenPipe traceback into whichever test's captured stderr runs next."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass

    def start(self) -> None:
        """Serve from a daemon thread. It checks for `shutdown()` every 0.05 s instead of the default 0.5 s,
        which every test using a server would otherwise wait out at teardown."""
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


class MjpegCamera(http.server.BaseHTTPRequestHandler):
    """A camera over HTTP (multipart JPEG): the first `LIVE` connections each get `FRAMES` frames of
    `frame(i)` and are dropped; later ones are refused with 503, as by a camera that went away. A subclass
    sets `connections` (a list the fixture reads: when each connection came)."""

    connections: list[float]
    LIVE = 2
    FRAMES = 5

    def frame(self, i: int) -> Any:
        raise NotImplementedError

    def do_GET(self) -> None:
        import cv2

        self.connections.append(time.monotonic())
        if len(self.connections) > self.LIVE:
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for i in range(self.FRAMES):
            jpg = cv2.imencode(".jpg", self.frame(i), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
            head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpg)}\r\n\r\n".encode()
            try:
                self.wfile.write(head + jpg + b"\r\n")
                self.wfile.flush()
            except BrokenPipeError:  # the probe hangs up after the first frame
                return
            time.sleep(0.02)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, folder it serves) for a local http.server on 127.0.0.1."""
    root = tmp_path / "www"
    root.mkdir()
    server = QuietServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    server.daemon_threads = True
    server.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def make_video(
    path: Path, frames: int = 12, size: tuple[int, int] = (96, 128), fps: float = 10.0, fourcc: str = ""
) -> Path:
    """A small clip: a square moving over noise, one distinct picture per frame. The codec follows the
    suffix (mp4v for .mp4, MJPG for .avi) unless `fourcc` is given."""
    import cv2
    import numpy as np

    h, w = size
    fourcc = fourcc or ("MJPG" if path.suffix == ".avi" else "mp4v")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), path
    rng = np.random.default_rng(frames)
    for i in range(frames):
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        x = (i * 7) % max(w - 30, 1)
        cv2.rectangle(img, (x, h // 4), (x + 30, h // 4 + 30), (0, 0, 255), -1)
        writer.write(img)
    writer.release()
    return path


def read_video(path: Path) -> tuple[int, int, int, float]:
    """(frames actually decodable, width, height, fps) of a written video, read back with OpenCV."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    n = 0
    while cap.read()[0]:
        n += 1
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return n, w, h, fps


def truncate(path: Path, keep: float = 0.6) -> Path:
    """Cut a file's bytes, as an interrupted copy or download would."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path
