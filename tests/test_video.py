from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pytest
from conftest import MjpegCamera, QuietServer, make_video, read_video, truncate

from detect_cli.errors import InputError, NoInputsError
from detect_cli.results import Detection, ImageResult, Speed
from detect_cli.sources import VideoInput, discover_videos
from detect_cli.video import (
    CODECS,
    OpenedVideo,
    can_write,
    decode,
    frames_to_process,
    open_video,
    open_videos,
    pick_codec,
    video_frames,
)
from detect_cli.writers import AnnotatedVideoWriter


def _one(source: str | Path) -> VideoInput:
    [item] = discover_videos([str(source)])
    return item


def test_open_reads_size_fps_and_frame_count(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=12, fps=10)
    v = open_video(_one(clip), tmp_path)
    assert (v.info.width, v.info.height, v.info.fps, v.info.frames) == (128, 96, 10.0, 12)
    assert not v.info.live and v.location == str(clip)


@pytest.mark.parametrize(
    ("stride", "max_frames", "indexes"),
    [(1, None, list(range(12))), (5, None, [0, 5, 10]), (2, 3, [0, 2, 4]), (1, 4, [0, 1, 2, 3])],
)
def test_decode_stride_and_max_frames(
    tmp_path: Path, stride: int, max_frames: int | None, indexes: list[int]
) -> None:
    v = open_video(_one(make_video(tmp_path / "c.avi", frames=12, fps=10)), tmp_path)
    frames = list(decode(v, stride, max_frames))
    assert [f.frame for f in frames] == indexes
    assert [f.time_s for f in frames] == [i / 10 for i in indexes]
    assert [str(f.rel_path) for f in frames] == [f"c/{i:06d}.jpg" for i in indexes]
    assert all(f.image is not None and f.image.shape == (96, 128, 3) for f in frames)
    assert frames_to_process(v.info, stride, max_frames) == len(indexes)


def test_frames_decoded_match_a_plain_read(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.avi", frames=6)
    cap = cv2.VideoCapture(str(clip))
    plain = [cap.read()[1] for _ in range(6)]
    ours = [f.image for f in video_frames([open_video(_one(clip), tmp_path)])]
    assert len(ours) == 6 and all(np.array_equal(a, b) for a, b in zip(plain, ours, strict=True))


def test_truncated_file_gives_its_frames_then_an_error_frame(tmp_path: Path) -> None:
    clip = truncate(make_video(tmp_path / "cut.avi", frames=20), keep=0.5)
    frames = list(decode(open_video(_one(clip), tmp_path)))
    good, last = frames[:-1], frames[-1]
    assert 3 <= len(good) < 20 and all(f.image is not None for f in good)
    assert last.image is None and last.frame == len(good)
    assert last.error == f"video ends early: decoded {len(good)} of 20 frames (truncated or corrupt file)"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("not a video"), "not a readable video"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: truncate(make_video(p), 0.5), "not a readable video"),  # mp4 index is at the end
    ],
)
def test_unreadable_files(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.mp4"
    make(path)
    with pytest.raises(InputError, match=message):
        open_video(_one(path), tmp_path)


def test_missing_webcam_and_unreachable_stream(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open webcam 97"):
        open_video(_one("97"), tmp_path)
    with pytest.raises(InputError, match="cannot open stream"):
        open_video(_one("rtsp://127.0.0.1:9/live"), tmp_path, timeout_s=2)


def test_open_videos_keeps_failures_beside_good_ones(tmp_path: Path) -> None:
    good = make_video(tmp_path / "good.mp4")
    (tmp_path / "bad.mp4").write_text("nope")
    opened = open_videos(discover_videos([str(good), str(tmp_path / "bad.mp4")]), tmp_path)
    assert isinstance(opened[0], OpenedVideo)
    assert isinstance(opened[1], VideoInput) and opened[1].error and "not a readable video" in opened[1].error
    frames = list(video_frames(opened))
    assert len(frames) == 13 and frames[-1].error == opened[1].error
    with pytest.raises(NoInputsError, match=r"cannot read .*bad.mp4: not a readable video"):
        open_videos(discover_videos([str(tmp_path / "bad.mp4")]), tmp_path)


def test_url_to_a_video_file_is_downloaded(tmp_path: Path, http_root: tuple[str, Path]) -> None:
    base, www = http_root
    make_video(www / "clip.mp4", frames=8)
    v = open_video(_one(f"{base}/clip.mp4"), tmp_path)
    assert v.info.frames == 8 and Path(str(v.location)).parent == tmp_path
    assert len(list(decode(v))) == 8
    with pytest.raises(InputError, match="HTTP 404"):
        open_video(_one(f"{base}/missing.mp4"), tmp_path)


class _MjpegStream(MjpegCamera):
    """The probe and the read each get 5 grey frames, brighter each time; then the camera is gone."""

    def frame(self, i: int) -> np.ndarray:
        return np.full((48, 64, 3), 40 * i, np.uint8)


@pytest.fixture
def mjpeg_stream() -> Iterator[tuple[str, list[float]]]:
    connections: list[float] = []
    handler = type("Handler", (_MjpegStream,), {"connections": connections})
    server = QuietServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cam", connections
    finally:
        server.shutdown()
        server.server_close()


def test_stream_that_stops_is_reconnected_a_bounded_number_of_times(
    tmp_path: Path, mjpeg_stream: tuple[str, list[float]]
) -> None:
    url, connections = mjpeg_stream
    v = open_video(_one(url), tmp_path, timeout_s=3)
    assert v.info.live
    notes: list[str] = []
    frames = list(decode(v, reconnects=2, timeout_s=3, note=notes.append))
    assert [f.frame for f in frames] == [0, 1, 2, 3, 4] and all(f.error is None for f in frames)
    assert len(connections) == 1 + 1 + 2  # the probe, the read, then two reconnect attempts
    assert notes == [f"{url}: stream stopped; gave up after 2 reconnects"]


def test_a_codec_that_writes_here_is_picked() -> None:
    codec = pick_codec()
    assert codec in CODECS and can_write(codec)
    assert pick_codec() is codec  # checked once


def test_video_writer_one_playable_video_per_source(tmp_path: Path) -> None:
    codec = pick_codec()
    sink = AnnotatedVideoWriter(tmp_path, {"a.mp4": 10.0, "b.mp4": 5.0}, codec)
    det = (Detection(0, "person", 0.9, (10.0, 10.0, 60.0, 60.0)),)
    image = np.zeros((96, 128, 3), np.uint8)
    with sink:
        for i in range(4):
            sink.write(
                ImageResult("a.mp4", "m", 128, 96, Speed(0, 0, 0), det), PurePosixPath(f"a/{i}.jpg"), image
            )
        sink.write(ImageResult("a.mp4", "m", error="video ends early"), PurePosixPath("a/4.jpg"), None)
        for i in range(3):
            big = np.zeros((192, 256, 3), np.uint8)  # a stream that changed size mid-way is resized
            sink.write(ImageResult("b.mp4", "m"), PurePosixPath(f"sub/b/{i}.jpg"), image if i else big)
    a, b = tmp_path / f"a{codec.suffix}", tmp_path / "sub" / f"b{codec.suffix}"
    assert sink.written == [a, b]
    assert read_video(a) == (4, 128, 96, 10.0)
    assert read_video(b) == (3, 256, 192, 5.0)
    assert not list(tmp_path.rglob("*.part*"))
    first = cv2.VideoCapture(str(a)).read()[1]
    assert first[:, :, 0].max() > 50 or first[:, :, 1].max() > 50 or first[:, :, 2].max() > 50  # a box drawn


def _write_clip(
    sink: AnnotatedVideoWriter, frames: int, size: tuple[int, int], source: str = "a.mp4"
) -> None:
    h, w = size
    rng = np.random.default_rng(0)
    det = (Detection(0, "person", 0.9, (2.0, 2.0, 30.0, 30.0)),)
    with sink:
        for i in range(frames):
            image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            result = ImageResult(source, "m", w, h, Speed(0, 0, 0), det)
            sink.write(result, PurePosixPath(f"{Path(source).stem}/{i:06d}.jpg"), image)


def test_videos_are_h264_in_mp4_that_browsers_play(tmp_path: Path) -> None:
    """PyAV is a dependency, so the codec picked is H.264 (yuv420p, index first): a frame of odd size
    is padded by one pixel to the even size yuv420p needs, and every frame decodes."""
    import av

    codec = pick_codec()
    assert (codec.name, codec.suffix, codec.library) == ("H.264", ".mp4", "pyav")
    sink = AnnotatedVideoWriter(tmp_path, {"a.mp4": 12.5}, codec)
    _write_clip(sink, frames=17, size=(65, 97))
    video = tmp_path / "a.mp4"
    assert sink.written == [video] and not sink.problems
    assert read_video(video) == (17, 98, 66, 12.5)  # frame-exact; padded to even width and height
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
    data = video.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # faststart: playable while it downloads
    assert not list(tmp_path.rglob("*.part*"))


@pytest.fixture
def no_pyav(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`import av` fails, as where PyAV is not installed; the codec is probed again without it."""
    import sys

    monkeypatch.setitem(sys.modules, "av", None)
    pick_codec.cache_clear()
    yield
    pick_codec.cache_clear()


@pytest.mark.usefixtures("no_pyav")
def test_without_pyav_opencv_writes_the_video(tmp_path: Path) -> None:
    codec = pick_codec()
    assert codec.library == "opencv" and codec in CODECS and not can_write(CODECS[0])
    sink = AnnotatedVideoWriter(tmp_path, {"a.mp4": 10.0}, codec)
    _write_clip(sink, frames=5, size=(96, 128))
    assert sink.written == [tmp_path / f"a{codec.suffix}"] and not sink.problems
    assert read_video(sink.written[0]) == (5, 128, 96, 10.0)


@pytest.mark.usefixtures("no_pyav")
def test_an_h264_writer_without_pyav_is_one_video_problem(tmp_path: Path) -> None:
    sink = AnnotatedVideoWriter(tmp_path, {"a.mp4": 10.0}, CODECS[0])
    _write_clip(sink, frames=3, size=(96, 128))
    assert sink.written == [] and not list(tmp_path.rglob("*.mp4"))
    [(source, why)] = sink.problems
    assert source == "a.mp4" and "PyAV is not installed" in why
