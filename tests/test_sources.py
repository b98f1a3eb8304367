from __future__ import annotations

from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pytest
from conftest import make_image

from detect_cli.errors import InputError, NoInputsError
from detect_cli.sources import decode_image, discover_images, fetch_url, read_image, url_rel_path


def _rels(items):
    return [str(i.rel_path) for i in items]


def test_folder_is_recursive_sorted_and_images_only(images: Path) -> None:
    items = discover_images([str(images)])
    # a folder's own files first, then its sub-folders, each sorted by name
    assert _rels(items) == ["imgs/top.png", "imgs/a/x.jpg", "imgs/b/x.jpg", "imgs/c/d/deep.jpg"]
    assert all(i.error is None for i in items)


def test_no_recursive_keeps_top_level(images: Path) -> None:
    assert _rels(discover_images([str(images)], recursive=False)) == ["imgs/top.png"]


def test_two_folders_with_same_file_names_never_collide(images: Path) -> None:
    items = discover_images([str(images / "a"), str(images / "b")])
    assert _rels(items) == ["a/x.jpg", "b/x.jpg"]


def test_same_file_name_given_as_files_gets_numbered(images: Path) -> None:
    items = discover_images([str(images / "a" / "x.jpg"), str(images / "b" / "x.jpg")])
    assert _rels(items) == ["x.jpg.jpg", "x-2.jpg.jpg"]  # labels/x.jpg.txt, labels/x-2.jpg.txt


def test_repeated_input_is_processed_once(images: Path) -> None:
    items = discover_images([str(images / "top.png"), str(images), str(images / "top.png")])
    assert [i.source for i in items].count(str(images / "top.png")) == 1


def test_glob_mirrors_paths_below_its_base(images: Path) -> None:
    items = discover_images([str(images / "*" / "x.jpg")])
    assert _rels(items) == ["imgs/a/x.jpg", "imgs/b/x.jpg"]


def _pictures(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        make_image(folder / name)
    return folder


@pytest.mark.parametrize(
    ("files", "source", "found", "error"),
    [
        # a name that exists is that file, though as a pattern it would match 'IMG 1.jpg' instead
        (["IMG [1].jpg", "IMG 1.jpg"], "IMG [1].jpg", ["IMG [1].jpg"], None),
        (["IMG [1].jpg"], "IMG [1].jpg", ["IMG [1].jpg"], None),
        (["IMG 1.jpg"], "IMG [1].jpg", ["IMG 1.jpg"], None),  # names nothing: a pattern, as before
        (["IMG 1.jpg", "IMG [1].jpg"], "IMG 1.jpg", ["IMG 1.jpg"], None),
        (["a*b?.jpg", "axbc.jpg"], "a*b?.jpg", ["a*b?.jpg"], None),
        (
            ["shots [2024]/x.jpg", "shots [2024]/y.png", "shots 2/z.jpg"],
            "shots [2024]/*.jpg",
            ["x.jpg"],
            None,
        ),
        (["shots [2024]/x.jpg", "shots 2/z.jpg"], "shots [2024]", ["x.jpg"], None),
        (["shots 2/z.jpg"], "shots [2024]/*.jpg", ["z.jpg"], None),  # names nothing: a pattern
        (["shots 2/z.jpg"], "shots [1]/*.jpg", [], "pattern matched no images"),
    ],
)
def test_a_name_that_exists_is_taken_literally_before_it_is_a_pattern(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: list[str],
    source: str,
    found: list[str],
    error: str | None,
) -> None:
    for name in files:
        _pictures((tmp_path / name).parent, Path(name).name)
    for where in ("absolute", "relative"):
        monkeypatch.chdir(tmp_path)
        given = str(tmp_path / source) if where == "absolute" else source
        if error:
            with pytest.raises(NoInputsError, match=error):
                discover_images([given])
            continue
        items = discover_images([given])
        assert [Path(i.source).name for i in items] == found, where
        assert all(i.error is None and i.path is not None and i.path.is_file() for i in items)


def test_list_file_paths_are_relative_to_it(images: Path) -> None:
    lst = images / "list.txt"
    lst.write_text("# my inputs\na/x.jpg\n\ntop.png  # the png\nmissing.jpg\n")
    items = discover_images([f"@{lst}"])
    assert [Path(i.source).name for i in items] == ["x.jpg", "top.png", "missing.jpg"]
    assert [i.error for i in items][:2] == [None, None]
    assert items[2].error == "no such file or folder"


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("nope/missing.jpg", "no such file or folder"),
        ("ftp://example.com/a.jpg", "unsupported URL scheme 'ftp': only http and https are fetched"),
        ("file:///etc/passwd", "unsupported URL scheme 'file': only http and https are fetched"),
        ("nope/*.jpg", "pattern matched no images"),
    ],
)
def test_bad_sources_become_error_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, error: str
) -> None:
    monkeypatch.chdir(tmp_path)
    make_image(tmp_path / "good.jpg")
    good, bad = discover_images(["good.jpg", source])
    assert good.error is None
    assert bad.error == error
    with pytest.raises(NoInputsError, match=f"no inputs found .*{error}"):
        discover_images([source])  # alone, nothing could run


def test_empty_folder_is_an_error_record(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    make_image(tmp_path / "good.jpg")
    item = discover_images([str(tmp_path / "empty"), str(tmp_path / "good.jpg")])[0]
    assert item.error is not None and item.error.startswith("folder contains no images")


def test_no_sources_at_all_raises() -> None:
    with pytest.raises(NoInputsError):
        discover_images([])


@pytest.mark.parametrize(
    "url",
    [
        "http://h/../../etc/passwd",
        "https://h:8080/a/b/c.png?x=1&y=../../z",
        "http://h/",
        "http://h/..%2F..%2Fx.jpg",
    ],
)
def test_url_output_names_cannot_escape(url: str) -> None:
    rel = url_rel_path(url)
    assert rel.parts[0] == "urls" and len(rel.parts) == 2
    assert ".." not in rel.parts and not rel.name.startswith(".")
    assert rel.suffix in {".jpg", ".png"}


def test_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    root = tmp_path / "loop"
    make_image(root / "a.jpg")
    (root / "self").symlink_to(root, target_is_directory=True)
    notes: list[str] = []
    assert _rels(discover_images([str(root)], warn=notes.append)) == ["loop/a.jpg"]
    assert len(notes) == 1 and "symlink loop" in notes[0] and str(root / "self") in notes[0]


def test_symlinked_folders_are_followed_and_a_looping_file_link_fails_on_read(tmp_path: Path) -> None:
    make_image(tmp_path / "elsewhere" / "b.jpg")
    root = tmp_path / "root"
    make_image(root / "a.jpg")
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (root / "deep").mkdir()
    (root / "deep" / "up").symlink_to(root, target_is_directory=True)  # a cycle through an ancestor
    (root / "self.jpg").symlink_to(root / "self.jpg")  # a link to itself
    notes: list[str] = []
    items = discover_images([str(root)], warn=notes.append)
    assert _rels(items) == ["root/a.jpg", "root/self.jpg", "root/linked/b.jpg"]
    assert [Path(n.split(":")[1].split()[0]).name for n in notes] == ["up"]
    with pytest.raises(InputError, match="symlink loop"):
        read_image(items[1])


def test_unreadable_folder_is_a_failed_input_not_fatal(images: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    real = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if Path(path).name == "c":  # root bypasses permissions, so refuse the way the OS would
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    items = discover_images([str(images)])
    assert [(i.source, i.error) for i in items if i.error] == [
        (str(images / "c"), "cannot read folder: Permission denied")
    ]
    assert _rels(i for i in items if not i.error) == ["imgs/top.png", "imgs/a/x.jpg", "imgs/b/x.jpg"]


# --- decoding -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "channels"),
    [("grey.png", 1), ("rgba.png", 4), ("colour.bmp", 3), ("colour.webp", 3), ("colour.tif", 3)],
)
def test_decodes_to_bgr_uint8(tmp_path: Path, name: str, channels: int) -> None:
    path = make_image(tmp_path / name, channels=channels)
    img = decode_image(path.read_bytes())
    assert img.shape == (96, 128, 3) and img.dtype == np.uint8


def test_16_bit_png_decodes_to_8_bit(tmp_path: Path) -> None:
    img16 = (np.arange(96 * 128 * 3, dtype=np.uint32).reshape(96, 128, 3) * 7 % 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), img16)
    img = decode_image((tmp_path / "deep.png").read_bytes())
    assert img.dtype == np.uint8 and img.shape == (96, 128, 3)
    assert np.array_equal(img, (img16 >> 8).astype(np.uint8))


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty file"), (b"hello, I am text", "not a readable image")],
)
def test_undecodable_bytes(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        decode_image(data)


def test_an_odd_file_read_after_ultralytics_is_imported_sets_off_no_requirement_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ultralytics replaces PIL's Image.open with one that checks (and, online, pip-installs) a HEIF
    plugin when Pillow cannot identify a file; reading a header must not go through it."""
    from PIL import Image

    from detect_cli.compare.labels import _image_size
    from detect_cli.models import import_ultralytics

    import_ultralytics()
    import ultralytics.utils.checks as checks

    assert Image.open.__module__ == "ultralytics.utils.patches"  # the patch this test is about is on
    asked: list[object] = []
    monkeypatch.setattr(checks, "check_requirements", lambda *a, **k: asked.append(a))
    odd = b"II*\x00" + b"\x00" * 64  # a TIFF header Pillow cannot identify
    with pytest.raises(InputError, match="not a readable image"):
        decode_image(odd)
    (tmp_path / "odd.png").write_bytes(odd)
    assert _image_size(tmp_path / "odd.png") is None
    assert asked == []
    with pytest.raises(Exception):  # noqa: B017 - the patched open itself still asks (the check can fail)
        Image.open(tmp_path / "odd.png")
    assert asked, "ultralytics' patched Image.open no longer checks requirements: drop sources.pil_open"


@pytest.mark.parametrize("compression", ["opencv", "tiff_lzw", "tiff_adobe_deflate"])
def test_a_cut_tiff_is_a_failure_record_and_nothing_reaches_stderr(tmp_path: Path, compression: str) -> None:
    """Pillow warned 'Corrupt EXIF data' on stderr (two lines) reading a cut TIFF's header. Checked in
    a real process, on its file descriptor 2, with Python's default warning filters."""
    import subprocess
    import sys

    from PIL import Image

    whole = tmp_path / "whole.tif"
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    if compression == "opencv":  # its directory after the pixels: cut, Pillow reads past the end
        cv2.imwrite(str(whole), pixels)
    else:
        Image.fromarray(pixels).save(whole, compression=compression)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    script = (
        "import sys\n"
        "from detect_cli.errors import InputError\n"
        "from detect_cli.sources import discover_images, read_image\n"
        "[item] = discover_images([sys.argv[1]])\n"
        "try:\n"
        "    read_image(item)\n"
        "except InputError as e:\n"
        "    print(e)\n"
    )
    for path, outcome in ((cut, "not a readable image (a damaged or cut-short TIFF)"), (whole, "")):
        proc = subprocess.run(
            [sys.executable, "-W", "default", "-c", script, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert proc.stdout.strip() == outcome


def test_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    data = make_image(tmp_path / "a.jpg", size=(240, 320)).read_bytes()
    assert decode_image(data).shape == (240, 320, 3)
    with pytest.raises(InputError, match="truncated JPEG"):
        decode_image(data[: len(data) // 2])


def test_jpeg_with_trailing_data_after_end_marker_is_fine(tmp_path: Path) -> None:
    data = make_image(tmp_path / "a.jpg").read_bytes() + b"\x00MOTIONPHOTO" * 10
    assert decode_image(data).shape == (96, 128, 3)


def test_read_image_reports_vanished_file(tmp_path: Path) -> None:
    path = make_image(tmp_path / "a.jpg")
    [item] = discover_images([str(path)])
    path.unlink()
    with pytest.raises(InputError, match="vanished"):
        read_image(item)


# --- URLs (local http.server) ---------------------------------------------------------------------


def test_url_is_fetched_and_decoded(http_root: tuple[str, Path]) -> None:
    base, root = http_root
    make_image(root / "pic.jpg")
    [item] = discover_images([f"{base}/pic.jpg"])
    assert item.rel_path == PurePosixPath("urls", f"127.0.0.1_{base.rsplit(':', 1)[1]}_pic.jpg")
    assert read_image(item).shape == (96, 128, 3)


def test_url_404(http_root: tuple[str, Path]) -> None:
    base, _ = http_root
    with pytest.raises(InputError, match="HTTP 404"):
        fetch_url(f"{base}/missing.jpg")


def test_url_timeout(http_root: tuple[str, Path]) -> None:
    base, root = http_root
    make_image(root / "pic.jpg")
    with pytest.raises(InputError, match=r"timed out|cannot fetch"):
        fetch_url(f"{base}/slow/pic.jpg", timeout=0.3)


# --- videos ---------------------------------------------------------------------------------------


def test_video_folder_is_recursive_and_videos_only(tmp_path: Path) -> None:
    from detect_cli.sources import discover_videos

    root = tmp_path / "clips"
    for rel in ("b.mp4", "a.AVI", "sub/c.mkv", "sub/d.webm", "sub/e.mov"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    make_image(root / "still.jpg")
    items = discover_videos([str(root)])
    assert _rels(items) == ["clips/a", "clips/b", "clips/sub/c", "clips/sub/d", "clips/sub/e"]
    assert _rels(discover_videos([str(root)], recursive=False)) == ["clips/a", "clips/b"]


@pytest.mark.parametrize(
    ("names", "rels"),
    [
        (["a.mp4", "a.avi"], ["a.mp4", "a.avi"]),  # they keep their suffix, as pictures do
        (["Clip.mp4", "clip.avi", "b.mov"], ["Clip.mp4", "clip.avi", "b"]),  # one name ignoring case
        (["A.mp4", "a.mp4", "a.MP4"], ["A.mp4", "a-3.mp4", "a-2.MP4"]),  # still taken: -2, -3 (sorted)
        (["a.avi", "a.mp4.mov"], ["a.avi", "a.mp4"]),  # a's video a.mp4 was a.mp4.mov's frames folder
        (["a.avi", "A.MKV.mov"], ["a.avi", "A.MKV"]),  # the same, ignoring case
        (["a.avi", "a.avi.mov", "a.mov"], ["a-2.avi", "a.avi", "a.mov"]),  # a.avi/ (frames) taken: -2
    ],
)
def test_video_outputs_never_collide(tmp_path: Path, names: list[str], rels: list[str]) -> None:
    """Videos are named by the rule pictures are (sources.names): a.mp4 beside a.avi gave a and a-2,
    and Clip.mp4 beside clip.avi gave Clip and clip, one video on a case-insensitive disk."""
    from detect_cli.sources import discover_videos

    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert _rels(discover_videos([str(tmp_path / n) for n in names])) == rels
    assert _rels(discover_videos([str(tmp_path / n) for n in reversed(names)])) == rels[::-1]


def test_stream_names_keep_their_dots_when_they_clash() -> None:
    """A stream's name has no suffix to keep: two that differ by case get -2, and the dots of an
    address stay where they are."""
    from detect_cli.sources import discover_videos

    items = discover_videos(["rtsp://10.0.0.5/Live", "rtsp://10.0.0.5/live"])
    assert _rels(items) == ["streams/10.0.0.5_Live", "streams/10.0.0.5_live-2"]


@pytest.mark.parametrize(
    ("source", "rel", "kind", "error"),
    [
        ("0", "webcam0", "webcam", None),
        ("rtsp://cam.local:554/live/main", "streams/cam.local_554_live_main", "stream", None),
        ("rtmp://host/app/key", "streams/host_app_key", "stream", None),
        ("http://cam.local/video.mjpg", "streams/cam.local_video", "stream", None),
        ("https://example.com/clips/a.mp4?x=1", "urls/example.com_clips_a_x_1", "file", None),
        ("ftp://example.com/a.mp4", "streams/example.com_a", "stream", "unsupported URL scheme 'ftp'"),
    ],
)
def test_video_source_kinds(source: str, rel: str, kind: str, error: str | None) -> None:
    from detect_cli.sources import VideoInput
    from detect_cli.sources.discover import _videos_from_one

    [item] = _videos_from_one(source, True, None)
    assert isinstance(item, VideoInput) and str(item.rel_path) == rel
    got = "webcam" if item.webcam is not None else "file" if item.url_is_file else "stream"
    assert got == kind
    assert (item.error or "").startswith(error or "")


@pytest.mark.parametrize("source", ["²", "٣", "1²"])
def test_unicode_digits_are_not_webcam_indexes(source: str) -> None:
    from detect_cli.sources.discover import _videos_from_one

    [item] = _videos_from_one(source, True, None)
    assert item.webcam is None and item.error == "no such file or folder"


def test_video_list_file_mixes_paths_urls_and_webcams(tmp_path: Path) -> None:
    from detect_cli.sources import discover_videos

    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").write_bytes(b"x")
    (tmp_path / "list.txt").write_text("v/a.mp4  # relative to the list\nrtsp://h/s\n1\n")
    items = discover_videos([f"@{tmp_path / 'list.txt'}"])
    assert [i.source for i in items] == [str(tmp_path / "v" / "a.mp4"), "rtsp://h/s", "webcam 1"]


def test_no_videos_found_raises(tmp_path: Path) -> None:
    from detect_cli.sources import discover_videos

    make_image(tmp_path / "only.jpg")
    with pytest.raises(NoInputsError, match="folder contains no videos"):
        discover_videos([str(tmp_path)])


@pytest.mark.parametrize(
    ("source", "rel"),
    [
        ("rtsp://10.0.0.5:554/", "streams/10.0.0.5_554"),
        ("rtsp://10.0.0.5", "streams/10.0.0.5"),
        ("rtsp://nvr/cam?channel=2&subtype=0", "streams/nvr_cam_channel_2_subtype_0"),
        ("http://h/../../etc/passwd.mp4", "urls/h_.._.._etc_passwd"),
    ],
)
def test_stream_output_names_are_safe(source: str, rel: str) -> None:
    from detect_cli.sources.discover import _videos_from_one

    [item] = _videos_from_one(source, True, None)
    assert str(item.rel_path) == rel and ".." not in item.rel_path.parts


def test_a_picture_named_with_an_at_sign_is_that_picture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'@home.jpg' is an @list only when it names one: a picture of that very name, with no 'home.jpg'
    beside it, is that picture (it used to be read as a list file that does not exist). With a list of
    that name present, '@' keeps its meaning."""
    from detect_cli.sources import discover_images, named_kind

    monkeypatch.chdir(tmp_path)
    make_image(tmp_path / "@home.jpg")
    [item] = discover_images(["@home.jpg"])
    assert item.error is None and item.path == Path("@home.jpg"), item
    assert named_kind("@home.jpg") == "image"
    make_image(tmp_path / "a.jpg")
    (tmp_path / "list.txt").write_text("a.jpg\n")
    (tmp_path / "@list.txt").write_text("not this one\n")
    [listed] = discover_images(["@list.txt"])
    assert listed.error is None and listed.path is not None and listed.path.name == "a.jpg", listed


NAME_PARTS = ("a", "A", "a.mp4", "a.avi", "a.mp4.mp4", "a-2.mp4", "b")


@pytest.mark.parametrize("folders", [False, True])
def test_no_output_file_is_ever_a_folder_of_the_outputs(folders: bool) -> None:
    """For every set of up to three inputs named from a few tricky parts (one or two folders deep):
    no output file (an input's name and any suffix) is, ignoring case, a folder that outputs live in
    (a name's parent folders, and with `folders` a video's own name: its frames), and no two names are
    alike; the names depend on the set alone."""
    import itertools

    from detect_cli.sources import unique_stems

    paths = [PurePosixPath(p) for p in NAME_PARTS] + [
        PurePosixPath(d, f) for d in NAME_PARTS[:4] for f in ("a", "x")
    ]
    suffixes = (".avi", ".mov")
    for combo in itertools.combinations(itertools.product(paths, suffixes), 3):
        names = unique_stems(list(combo), folders=folders)
        assert unique_stems(list(combo)[::-1], folders=folders) == names[::-1]
        folded = [str(n).casefold() for n in names]
        assert len(set(folded)) == len(folded), combo
        dirs = {str(d).casefold() for n in names for d in n.parents} | (set(folded) if folders else set())
        for n in folded:
            for suffix in (".mp4", ".txt", ".jpg", ".avi", ".mov"):
                assert n + suffix not in dirs, (combo, names)
