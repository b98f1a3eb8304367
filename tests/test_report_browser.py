"""report.html as a person sees it: opened in real headless Chromium (Debian's `chromium`), driven over
its DevTools protocol on a pipe (`--remote-debugging-pipe`: no websocket package needed). Every image
must decode, the side-by-side video (when embedded) must have a duration, the console must stay free of
errors, and no request may leave the file system. At 400 px and 1366 px wide nothing overflows the
window sideways, and a click on a thumbnail opens the viewer, whose boxes, toggles and arrow keys work.
A screenshot is saved as the test's artifact.

Skipped, saying why, where no Chromium is installed (`.ci/run` installs it)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_image, make_video
from test_cli_compare import compare_args, runner

from detect_cli.cli import app


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (chromium on PATH or /usr/bin/chromium); apt-get install chromium",
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--mute-audio",
)
SCREENSHOT_COPY = Path("/tmp/report-screenshot.png")


class DevTools:
    """Chromium with its DevTools protocol on fds 3 (commands in) and 4 (replies and events out), each
    message JSON ended by a NUL byte."""

    def __init__(self, profile: Path) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # Out of the way of 3 and 4, so that placing one cannot overwrite the other.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_child_r, from_child_w)]
        for fd in (to_child_r, from_child_w):
            os.close(fd)

        def place() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        assert CHROMIUM is not None
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=place,  # a test helper: no thread of ours holds a lock at this point
        )
        for fd in high:
            os.close(fd)
        self._out = os.fdopen(to_child_w, "wb", buffering=0)
        self._in = os.fdopen(from_child_r, "rb", buffering=0)
        self._next = 0
        self.replies: dict[int, dict[str, Any]] = {}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._lock = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while chunk := self._in.read(65536):
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        self.replies[message["id"]] = message
                        self._lock.notify_all()
                else:
                    self.seen.append(message)
                    self.events.put(message)

    def send(self, method: str, session: str | None = None, timeout: float = 60, **params: Any) -> Any:
        self._next += 1
        n = self._next
        message: dict[str, Any] = {"id": n, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._out.write(json.dumps(message).encode() + b"\0")
        with self._lock:
            if not self._lock.wait_for(lambda: n in self.replies, timeout):
                raise TimeoutError(f"no reply to {method} in {timeout} s")
            reply = self.replies.pop(n)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def wait_event(self, method: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(queue.Empty):
                event = self.events.get(timeout=left)
                if event["method"] == method:
                    return event
        raise TimeoutError(f"no {method} in {timeout} s")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


CHECK_PAGE = """
(async () => {
  const images = [...document.images];
  await Promise.all(images.map((i) => i.decode().catch(() => null)));
  const video = document.querySelector("video");
  let duration = null, error = null;
  if (video) {
    if (video.readyState < 1) {
      await new Promise((done) => {
        video.addEventListener("loadedmetadata", done, { once: true });
        video.addEventListener("error", done, { once: true });
        setTimeout(done, 20000);
      });
    }
    duration = video.duration;
    error = video.error ? video.error.code : null;
  }
  return JSON.stringify({
    images: images.map((i) => [i.alt, i.naturalWidth]),
    video: video ? { duration: Number.isFinite(duration) ? duration : -1, error } : null,
    links: [...document.links].map((a) => a.href),
  });
})()
"""


@contextlib.contextmanager
def browser(profile: Path) -> Iterator[DevTools]:
    tools = DevTools(profile)
    try:
        yield tools
    finally:
        tools.close()


def _load_and_run(b: DevTools, session: str, page: Path, expression: str) -> dict[str, Any]:
    """Open `page` in the tab and evaluate `expression` there (awaited), failing on a script error."""
    b.send("Page.navigate", session, url=page.as_uri())
    b.wait_event("Page.loadEventFired")
    found = b.send(
        "Runtime.evaluate", session, timeout=90, expression=expression, awaitPromise=True, returnByValue=True
    )
    assert "exceptionDetails" not in found, found
    return found


def open_report(page: Path, profile: Path) -> tuple[dict[str, Any], list[str], list[str]]:
    """Load `page`; return what CHECK_PAGE found, every URL requested, and the console's errors."""
    with browser(profile) as b:
        target = b.send("Target.createTarget", url="about:blank")["targetId"]
        session = b.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            b.send(f"{domain}.enable", session)
        found = _load_and_run(b, session, page, CHECK_PAGE)
        time.sleep(0.5)  # late console messages
        events = list(b.seen)
    requests = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    errors = [
        json.dumps(e["params"])[:400]
        for e in events
        if e["method"] == "Runtime.exceptionThrown"
        or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    return json.loads(found["result"]["value"]), requests, errors


VIEWER_CHECK = """
(async () => {
  const width = () => document.documentElement.scrollWidth;
  const out = { scrollWidth: width(), innerWidth: window.innerWidth };
  const thumb = document.querySelector("a[data-view]");
  if (!thumb) return JSON.stringify(out);
  const viewer = document.getElementById("viewer");
  thumb.click();
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  const panels = () => [...viewer.querySelectorAll(".panel")];
  const rects = () => panels().map((p) => [...p.querySelectorAll("svg rect")].filter(
    (r) => r.closest("svg").style.display !== "none").length);
  out.opened = !viewer.hidden && viewer.getBoundingClientRect().width > 0;
  out.title = viewer.querySelector(".title").textContent;
  out.panels = panels().length;
  const images = panels().map((p) => p.querySelector("img"));
  await Promise.all(images.map((i) => i.decode().catch(() => null)));
  out.pictures = images.map((i) => i.naturalWidth);
  out.rects = rects();
  const toggle = viewer.querySelector(".toggles input");
  if (toggle) { toggle.click(); out.rectsHidden = rects(); toggle.click(); }
  document.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight" }));
  out.next = viewer.querySelector(".title").textContent;
  out.viewerScrollWidth = width();
  document.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }));
  out.closed = viewer.hidden;
  return JSON.stringify(out);
})()
"""


def check_layout(page: Path, profile: Path, width: int, height: int) -> dict[str, Any]:
    """Open `page` in a `width` x `height` window; measure its width, then open, drive and close the
    viewer (VIEWER_CHECK)."""
    with browser(profile) as b:
        target = b.send("Target.createTarget", url="about:blank")["targetId"]
        session = b.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        b.send("Page.enable", session)
        b.send(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        found = _load_and_run(b, session, page, VIEWER_CHECK)
    return json.loads(found["result"]["value"])


def assert_fits_and_views(page: Path, tmp_path: Path, models: int) -> None:
    """No sideways overflow at 400 and 1366 px; the viewer opens on a click, one panel per model, each
    picture decoded, its boxes drawn from the detections, hidden by its toggle; → moves, Esc closes."""
    for width, height in ((400, 900), (1366, 768)):
        found = check_layout(page, tmp_path / f"profile-{width}", width, height)
        assert found["scrollWidth"] <= found["innerWidth"], (width, found)
        assert found["opened"] and found["panels"] == models and all(found["pictures"]), found
        assert found["viewerScrollWidth"] <= found["innerWidth"], (width, found)
        assert found["title"].startswith("1/") and found["next"].startswith("2/") and found["closed"], found
        assert found["rects"][0] > 0 and found["rectsHidden"][0] == 0, found  # the first model's toggle
        assert found["rectsHidden"][1:] == found["rects"][1:], found


def screenshot(page: Path, profile: Path, path: Path) -> None:
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            f"--screenshot={path}",
            "--window-size=1400,2400",
            page.as_uri(),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
        check=True,
    )


def assert_page_is_whole(page: Path, tmp_path: Path) -> dict[str, Any]:
    found, requests, errors = open_report(page, tmp_path / "profile")
    assert found["images"], "the report shows plots and pictures"
    undecoded = [alt for alt, width in found["images"] if width <= 0]
    assert not undecoded, f"images that did not decode: {undecoded}"
    assert errors == [], errors
    assert requests and all(u.startswith(("file://", "data:")) for u in requests), requests
    assert all(u.startswith("file://") for u in found["links"]), "links point at files beside the report"
    return found


def test_the_image_report_opens_whole_in_chromium(rtdetr_pt: Path, yolo_pt: Path, tmp_path: Path) -> None:
    src = tmp_path / "imgs"
    for k in range(5):
        make_image(src / f"p{k}.jpg", k, size=(120, 160))
    out = tmp_path / "out"
    result = runner.invoke(app, [*compare_args(rtdetr_pt, yolo_pt, str(src)), "--no-memory", "-o", str(out)])
    assert result.exit_code == 0, result.output
    found = assert_page_is_whole(out / "report.html", tmp_path)
    thumbnails = [alt for alt, _ in found["images"] if alt.endswith(".jpg")]
    assert len(thumbnails) == 5, found["images"]  # the gallery shows every side-by-side
    assert sum(link.endswith(".jpg") for link in found["links"]) == 5
    assert_fits_and_views(out / "report.html", tmp_path, models=2)
    shot = tmp_path / "report.png"
    screenshot(out / "report.html", tmp_path / "profile-shot", shot)
    assert shot.stat().st_size > 10_000
    with contextlib.suppress(OSError):
        shutil.copyfile(shot, SCREENSHOT_COPY)


def _h264_available() -> bool:
    from detect_cli.video import pick_codec

    return pick_codec().name == "H.264"


@pytest.mark.skipif(not _h264_available(), reason="this build writes no H.264 (video.pick_codec): no <video>")
def test_the_video_report_plays_in_chromium(rtdetr_pt: Path, yolo_pt: Path, tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", frames=12)
    out = tmp_path / "out"
    result = runner.invoke(app, [*compare_args(rtdetr_pt, yolo_pt, str(clip)), "--no-memory", "-o", str(out)])
    assert result.exit_code == 0, result.output
    found = assert_page_is_whole(out / "report.html", tmp_path)
    assert found["video"] is not None and found["video"]["error"] is None, found["video"]
    assert 0 < found["video"]["duration"] < 60, found["video"]
    assert_fits_and_views(out / "report.html", tmp_path, models=2)
