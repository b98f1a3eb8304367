"""Turning the user's SOURCE arguments into inputs: files, folders, globs, http(s) URLs and @lists for
images; for videos also streams (rtsp, rtmp, http) and webcam indexes.

Discovery never raises for one bad source: a missing path, an empty folder or a refused URL becomes an
`ImageInput` carrying its `error`, so it is recorded in results.jsonl and the run goes on.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import http.client
import io
import math
import os
import re
import stat
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from detect_cli.errors import InputError, NoInputsError

if TYPE_CHECKING:
    import numpy as np

RUN_MARKER = ".detect.lock"  # in every run folder: discovery never walks into one (see rundir.py)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)
URL_SCHEMES = ("http", "https")
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https")
DEFAULT_URL_TIMEOUT_S = 15.0
MAX_URL_BYTES = 100 * 1024 * 1024  # an image larger than this is refused rather than filling memory
MAX_VIDEO_URL_BYTES = 4 * 1024**3  # a video URL is downloaded to a temporary file, up to this size
MAX_FILE_BYTES = 1024**3  # an image file larger than this is refused before it is read
# Images above this many pixels are refused from their header, before decoding: a 100 MP picture decodes
# to 300 MB; a "PNG bomb" of a few KB can declare 40000x40000 (4.8 GB). `--max-pixels` changes it.
DEFAULT_MAX_PIXELS = 100_000_000


@dataclass(frozen=True, slots=True)
class ImageInput:
    """One input to process.

    `source` is how results name it (the path as found, or the URL); `rel_path` is where its outputs go
    under the run folder, unique within a run.
    """

    source: str
    rel_path: PurePosixPath
    path: Path | None = None
    url: str | None = None
    error: str | None = None


_ASCII_DIGITS = re.compile(r"[0-9]+")


def ascii_int(text: str) -> int | None:
    """`text` as a non-negative integer written in ASCII digits ('0', '12'), else None.

    The one reading of user text as a number of this kind (webcam indexes, class ids, device
    indexes): `str.isdigit()` is true for '²' and '٣', which `int()` then refuses or reads as 3.
    """
    if not _ASCII_DIGITS.fullmatch(text):
        return None
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        return None


def is_url(text: str) -> bool:
    return "://" in text


def named_kind(source: str) -> Literal["image", "video"] | None:
    """What one SOURCE names by its suffix when it is one file (that exists) or a URL to one: an
    image or a video; None for folders, globs, lists, streams, webcams and other suffixes."""
    if source.startswith("@") or (glob.has_magic(source) and not os.path.lexists(source)):
        return None
    if is_url(source):
        suffix = PurePosixPath(urllib.parse.urlsplit(source).path).suffix.lower()
    elif os.path.isfile(source):
        suffix = Path(source).suffix.lower()
    else:
        return None
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "input"


def url_rel_path(url: str) -> PurePosixPath:
    """A file name derived from a URL that can never escape the output folder (no '/', no '..')."""
    parts = urllib.parse.urlsplit(url)
    name = _safe_name(f"{parts.netloc}{parts.path}")
    if parts.query:
        name = f"{name}_{_safe_name(parts.query)}"
    if PurePosixPath(name).suffix.lower() not in IMAGE_SUFFIXES:
        name += ".jpg"
    return PurePosixPath("urls", name)


def _dir_label(path: Path) -> str:
    return path.resolve().name or "root"


@dataclass(frozen=True, slots=True)
class WalkProblem:
    """A folder the walk could not enter (recorded as a failed input) or a symlink loop (a warning)."""

    path: Path
    message: str
    loop: bool = False


def _is_dir(entry: os.DirEntry[str]) -> bool | None:
    """entry.is_dir(), following symlinks; None for a link that cannot be resolved (a loop, say)."""
    try:
        return entry.is_dir()
    except OSError:
        return None


RUN_RECORDS = ("results.jsonl", "frames.jsonl", "report.json")  # what runs of older versions left


def is_run_folder(path: str | Path) -> bool:
    """A folder a detect run wrote into: it holds a run's lock file, or its record."""
    return any(os.path.lexists(os.path.join(path, name)) for name in (RUN_MARKER, *RUN_RECORDS))


def _walk_images(
    root: Path,
    recursive: bool,
    problems: list[WalkProblem] | None = None,
    suffixes: frozenset[str] = IMAGE_SUFFIXES,
    skip: frozenset[str] = frozenset(),
) -> Iterator[Path]:
    """Image files below root, sorted, depth first, one folder listing in memory at a time.

    Symlinked folders are followed, each real folder once: a link back to a folder already on the walk
    (a loop) is skipped and noted. A folder that cannot be listed is noted, never fatal. Sub-folders
    that are run folders (this run's `--out`, named in `skip` by real path, or any earlier run's) are
    not walked: a run never takes its own outputs for inputs.
    """
    problems = problems if problems is not None else []
    try:
        st = root.stat()
        seen = {(st.st_dev, st.st_ino)}
    except OSError:
        seen = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            problems.append(WalkProblem(folder, f"cannot read folder: {e.strerror or e}"))
            continue
        subdirs = []
        for entry in entries:
            is_dir = _is_dir(entry)
            if is_dir is None:  # unresolvable link: a file-like name is still tried, and its read reports it
                if Path(entry.name).suffix.lower() in suffixes:
                    yield Path(entry.path)
            elif is_dir:
                if not recursive:
                    continue
                try:
                    st = entry.stat()
                except OSError as e:
                    problems.append(WalkProblem(Path(entry.path), f"cannot read folder: {e.strerror or e}"))
                    continue
                ident = (st.st_dev, st.st_ino)
                if os.path.realpath(entry.path) in skip or is_run_folder(entry.path):
                    continue
                if ident in seen:
                    problems.append(
                        WalkProblem(
                            Path(entry.path),
                            f"symlink loop (or a second link): {entry.path} leads to "
                            f"{os.path.realpath(entry.path)}, already walked; not followed",
                            loop=True,
                        )
                    )
                    continue
                seen.add(ident)
                subdirs.append(Path(entry.path))
            elif Path(entry.name).suffix.lower() in suffixes:
                yield Path(entry.path)
        stack.extend(reversed(subdirs))


def _under_skipped(path: Path, base: Path, skip: frozenset[str]) -> bool:
    """A glob match inside a run folder (below the pattern's fixed part) is an output, not an input."""
    try:
        parts = path.parent.relative_to(base).parts
    except ValueError:
        return False
    folder = base
    for part in parts:
        folder = folder / part
        if os.path.realpath(folder) in skip or is_run_folder(folder):
            return True
    return False


def _split_pattern(path: Path) -> tuple[Path, str]:
    """(the folder a pattern starts from, the pattern to expand). Leading parts that exist on disk are
    taken literally, '[', '*' and '?' in their names included ('shots [2024]/*.jpg'); outputs mirror
    paths below the folder, which ends before the first wildcard."""
    parts = path.parts
    n = 0
    while n < len(parts) and os.path.lexists(Path(*parts[: n + 1])):
        n += 1
    while n < len(parts) and not glob.has_magic(parts[n]):
        n += 1
    if n == 0:
        return Path("."), str(path)
    base = Path(*parts[:n])
    return base, os.path.join(glob.escape(str(base)), *parts[n:])


Warn = Callable[[str], None]


def _from_one(
    source: str,
    recursive: bool,
    base_dir: Path | None,
    warn: Warn | None = None,
    suffixes: frozenset[str] = IMAGE_SUFFIXES,
    lists: tuple[str, ...] = (),
    skip: frozenset[str] = frozenset(),
) -> Iterator[ImageInput]:
    kind = "videos" if suffixes is VIDEO_SUFFIXES else "images"
    if source.startswith("@"):
        list_file = Path(source[1:])
        if base_dir is not None and not list_file.is_absolute():
            list_file = base_dir / list_file
        yield from _from_list(list_file, recursive, warn, lists, skip)
        return
    if is_url(source):
        scheme = urllib.parse.urlsplit(source).scheme.lower()
        if scheme not in URL_SCHEMES:
            yield ImageInput(
                source,
                url_rel_path(source),
                url=source,
                error=f"unsupported URL scheme '{scheme}': only http and https are fetched",
            )
        else:
            yield ImageInput(source, url_rel_path(source), url=source)
        return

    path = Path(source)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    # A name that exists is that file or folder, even when it reads as a pattern ('IMG [1].jpg' would
    # match 'IMG 1.jpg'); only a source that names nothing is expanded as a glob.
    if glob.has_magic(source) and not os.path.lexists(path):
        base, pattern = _split_pattern(path)
        matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
        files = [
            p
            for p in matches
            if p.suffix.lower() in suffixes and not p.is_dir() and not _under_skipped(p, base, skip)
        ]
        if not files:
            yield ImageInput(source, PurePosixPath(_safe_name(source)), error=f"pattern matched no {kind}")
        for f in files:
            rel = PurePosixPath(_dir_label(base), *f.relative_to(base).parts)
            yield ImageInput(str(f), rel, path=f)
    elif path.is_dir():
        found = False
        problems: list[WalkProblem] = []
        for f in _walk_images(path, recursive, problems, suffixes, skip):
            found = True
            rel = PurePosixPath(_dir_label(path), *f.relative_to(path).parts)
            yield ImageInput(str(f), rel, path=f)
        for p in problems:
            if p.loop:
                if warn:
                    warn(p.message)
            else:  # its images could not be listed: a failed input, so the run says so
                yield ImageInput(
                    str(p.path), PurePosixPath(_safe_name(str(p.path))), path=p.path, error=p.message
                )
        if not found and not any(not p.loop for p in problems):
            yield ImageInput(
                source,
                PurePosixPath(_safe_name(source)),
                path=path,
                error=f"folder contains no {kind} (" + ", ".join(sorted(suffixes)) + ")",
            )
    elif os.path.lexists(path):  # a file, or a FIFO or broken link that reading will name as such
        yield ImageInput(str(path), PurePosixPath(path.name), path=path)
    else:
        yield ImageInput(
            str(path), PurePosixPath(_safe_name(path.name)), path=path, error="no such file or folder"
        )


MAX_LIST_BYTES = 256 * 1024**2


def _list_entries(list_file: Path) -> list[str]:
    """One source per line; '#' starts a comment. UTF-8 (with or without a BOM); a list that is not
    UTF-8 is read byte for byte as file names are (`os.fsdecode`), so a Latin-1 list still names the
    files whose names are those bytes. Raises InputError when the file cannot be read."""
    data = read_regular(list_file, MAX_LIST_BYTES, what="list file")[0]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = os.fsdecode(data)
    entries = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip() if not is_url(line) else line.strip()
        if entry:
            entries.append(entry)
    return entries


def _list_problem(list_file: Path, lists: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """(why the list cannot be expanded, or ""; the chain of lists with this one added)."""
    key = os.path.realpath(list_file)
    if key in lists:
        return "list file includes itself (directly or through another list); not read again", lists
    if len(lists) >= 16:
        return "lists nested more than 16 deep", lists
    return "", (*lists, key)


def _from_list(
    list_file: Path,
    recursive: bool,
    warn: Warn | None,
    lists: tuple[str, ...] = (),
    skip: frozenset[str] = frozenset(),
) -> Iterator[ImageInput]:
    """Relative paths in a list (other lists too) are relative to the list file."""
    problem, lists = _list_problem(list_file, lists)
    try:
        if problem:
            raise InputError(problem)
        entries = _list_entries(list_file)
    except InputError as e:
        yield ImageInput(f"@{list_file}", PurePosixPath(_safe_name(list_file.name)), error=str(e))
        return
    for entry in entries:
        yield from _from_one(entry, recursive, list_file.parent, warn, lists=lists, skip=skip)


Input = TypeVar("Input", "ImageInput", "VideoInput")


def _unique_rel(items: Iterable[Input]) -> Iterator[Input]:
    """Drop repeats of the same file and give clashing output names a -2, -3... suffix."""
    seen_paths: set[str] = set()
    used: set[PurePosixPath] = set()
    for item in items:
        key = item.url or (os.path.realpath(item.path) if item.path else item.source)
        if item.error is None:
            if key in seen_paths:
                continue
            seen_paths.add(key)
        rel, n = item.rel_path, 1
        while rel in used:
            n += 1
            rel = item.rel_path.with_name(f"{item.rel_path.stem}-{n}{item.rel_path.suffix}")
        used.add(rel)
        yield replace(item, rel_path=rel) if rel != item.rel_path else item


def _skip_set(exclude: Iterable[Path]) -> frozenset[str]:
    return frozenset(os.path.realpath(p) for p in exclude)


def discover_images(
    sources: Sequence[str],
    recursive: bool = True,
    warn: Warn | None = None,
    exclude: Iterable[Path] = (),
) -> list[ImageInput]:
    """Expand SOURCE arguments into image inputs, in the order given (folders sorted).

    Sources that name nothing usable (and folders that cannot be listed) are kept as error records
    beside the good ones; when there are no good ones at all, NoInputsError says why. Symlink loops are
    skipped and passed to `warn`. Folders in `exclude` (the run's `--out`) and earlier runs' folders
    are not walked. The result is a list of small records (about 650 bytes per input): the total is
    needed up front for progress and the resume plan; a million inputs hold about 1 GB.
    """
    skip = _skip_set(exclude)
    found = (item for s in sources for item in _from_one(s, recursive, None, warn, skip=skip))
    items = list(_unique_rel(found))
    if not items:
        raise NoInputsError("no inputs given")
    if all(item.error for item in items):  # nothing to run: say why, rather than write a run of failures
        reasons = "; ".join(f"{item.source}: {item.error}" for item in items[:3])
        raise NoInputsError(f"no inputs found ({reasons}{'; …' if len(items) > 3 else ''})")
    return items


# --- videos ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VideoInput:
    """One video to process: a file, a URL (to a file, or a live stream) or a webcam index.

    `rel_path` names its outputs under the run folder without a suffix: the annotated video is
    `<rel_path>.mp4` (or the container the codec needs) and saved frames go in `<rel_path>/`.
    """

    source: str
    rel_path: PurePosixPath
    path: Path | None = None
    url: str | None = None
    webcam: int | None = None
    error: str | None = None

    @property
    def url_is_file(self) -> bool:
        """An http(s) URL naming a video file: downloaded whole, then read like a local file."""
        if not self.url:
            return False
        parts = urllib.parse.urlsplit(self.url)
        return parts.scheme.lower() in URL_SCHEMES and PurePosixPath(parts.path).suffix.lower() in (
            VIDEO_SUFFIXES
        )


def _video_url(source: str) -> VideoInput:
    parts = urllib.parse.urlsplit(source)
    scheme = parts.scheme.lower()
    path = parts.path
    if suffix := PurePosixPath(path).suffix:
        path = path[: -len(suffix)]
    name = _safe_name(f"{parts.netloc}{path}")
    if parts.query:  # cameras often tell channels apart by query alone
        name = f"{name}_{_safe_name(parts.query)}"
    if scheme not in STREAM_SCHEMES:
        return VideoInput(
            source,
            PurePosixPath("streams", name),
            url=source,
            error=f"unsupported URL scheme '{scheme}': use http(s), rtsp(s) or rtmp(s)",
        )
    item = VideoInput(source, PurePosixPath("streams", name), url=source)
    return replace(item, rel_path=PurePosixPath("urls", name)) if item.url_is_file else item


def _videos_from_one(
    source: str,
    recursive: bool,
    base_dir: Path | None,
    lists: tuple[str, ...] = (),
    skip: frozenset[str] = frozenset(),
) -> Iterator[VideoInput]:
    index = ascii_int(source)
    if index is not None and not (base_dir or Path()).joinpath(source).exists():
        yield VideoInput(f"webcam {source}", PurePosixPath(f"webcam{index}"), webcam=index)
    elif is_url(source):
        yield _video_url(source)
    elif source.startswith("@"):
        list_file = Path(source[1:]) if base_dir is None else base_dir / source[1:]
        problem, lists = _list_problem(list_file, lists)
        try:
            if problem:
                raise InputError(problem)
            entries = _list_entries(list_file)
        except InputError as e:
            yield VideoInput(source, PurePosixPath(_safe_name(list_file.name)), error=str(e))
            return
        for entry in entries:
            yield from _videos_from_one(entry, recursive, list_file.parent, lists, skip)
    else:
        for item in _from_one(source, recursive, base_dir, suffixes=VIDEO_SUFFIXES, skip=skip):
            yield VideoInput(item.source, item.rel_path.with_suffix(""), path=item.path, error=item.error)


def discover_videos(
    sources: Sequence[str], recursive: bool = True, exclude: Iterable[Path] = ()
) -> list[VideoInput]:
    """Expand SOURCE arguments into videos, in the order given (folders sorted), like `discover_images`.

    A number in ASCII digits is a webcam index (unless a file of that name exists); rtsp/rtmp URLs and
    http(s) URLs without a video file suffix are live streams. Whether each can be opened is checked later.
    """
    skip = _skip_set(exclude)
    found = (item for s in sources for item in _videos_from_one(s, recursive, None, skip=skip))
    items = list(_unique_rel(found))
    if not items:
        raise NoInputsError("no inputs given")
    if all(item.error for item in items):
        reasons = "; ".join(f"{item.source}: {item.error}" for item in items[:3])
        raise NoInputsError(f"no videos found ({reasons}{'; …' if len(items) > 3 else ''})")
    return items


# --- reading --------------------------------------------------------------------------------------


def quiet_opencv() -> Any:
    """Import cv2 with its own and FFmpeg's logging off: decode problems are reported by us, once.

    Either is left alone when set in the environment (OPENCV_LOG_LEVEL, OPENCV_FFMPEG_LOGLEVEL).
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when FFmpeg is first used
    import cv2

    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return cv2


def _first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


@contextlib.contextmanager
def _url_errors(timeout: float) -> Iterator[None]:
    """Any failure of a URL request becomes an InputError with a one-line reason."""
    try:
        yield
    except urllib.error.HTTPError as e:
        if 300 <= e.code < 400:  # urllib gives up on a redirect loop (or too many) with the last 3xx
            raise InputError(f"too many redirects (HTTP {e.code}; a redirect loop?)") from e
        raise InputError(f"HTTP {e.code} {_first_line(e.reason)}") from e
    except urllib.error.URLError as e:
        raise InputError(f"cannot fetch URL: {_first_line(e.reason)}") from e
    except TimeoutError as e:
        raise InputError(f"timed out after {timeout:g}s") from e
    except (OSError, http.client.HTTPException) as e:
        raise InputError(f"cannot fetch URL: {_first_line(e) or type(e).__name__}") from e


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only: a server must not send us to ftp:// or file://."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urllib.parse.urlsplit(newurl).scheme.lower() not in URL_SCHEMES:
            raise InputError(f"refused redirect to {newurl}: only http and https are fetched")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_HttpOnlyRedirects)


def _stream_url(url: str, timeout: float, limit: int, sink: Callable[[bytes], None]) -> int:
    """GET `url`, handing the body to `sink` chunk by chunk, within one deadline for the whole request.

    The deadline holds however the server behaves: the request runs in a daemon thread and the caller
    stops waiting when time is up (a server that sends one byte a second is cut off, and so is a name
    lookup that hangs). The thread then gives up at its next chunk. Returns the bytes received.
    """
    deadline = time.monotonic() + timeout
    done = threading.Event()
    outcome: list[BaseException | int] = []

    def fetch() -> None:
        received = 0
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "detect-cli"})
            with _url_errors(timeout), _opener.open(request, timeout=timeout) as response:
                while not done.is_set():
                    chunk = response.read1(1 << 16)
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > limit:
                        raise InputError(f"larger than {limit / 2**20:g} MiB")
                    if time.monotonic() > deadline:
                        raise InputError(f"timed out after {timeout:g}s")
                    sink(chunk)
            outcome.append(received)
        except BaseException as e:  # carried to the caller, which raises it
            outcome.append(e)
        finally:
            done.set()

    threading.Thread(target=fetch, name="detect-url", daemon=True).start()
    if not done.wait(max(deadline - time.monotonic(), 0) + 0.05) or not outcome:
        done.set()  # the thread stops at its next chunk; its socket times out on its own
        raise InputError(f"timed out after {timeout:g}s (the whole download)")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def fetch_url(url: str, timeout: float = DEFAULT_URL_TIMEOUT_S) -> bytes:
    """GET an http(s) URL within `timeout` seconds in all; any failure becomes an InputError."""
    chunks: list[bytes] = []
    _stream_url(url, timeout, MAX_URL_BYTES, chunks.append)
    return b"".join(chunks)


def download_url(url: str, dest: Path, timeout: float = DEFAULT_URL_TIMEOUT_S) -> Path:
    """GET an http(s) URL into `dest`, streamed in chunks (a video need not fit in memory), within
    `timeout` seconds in all."""
    with dest.open("wb") as f:
        size = _stream_url(url, timeout, MAX_VIDEO_URL_BYTES, f.write)
    if size == 0:
        raise InputError("empty file")
    return dest


def _jpeg_missing_end(data: bytes) -> bool:
    return data.startswith(b"\xff\xd8") and not data.rstrip(b"\x00\r\n").endswith(b"\xff\xd9")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_problem(data: bytes) -> str | None:
    """Why a PNG is damaged (a bad chunk checksum, cut short, compressed data that does not inflate), or
    None. Checked before OpenCV sees the bytes: libpng prints its complaints straight onto stderr, past
    any logging setting. Inflating costs about two thirds of a decode, for PNG inputs only."""
    import zlib

    pos, end = len(PNG_SIGNATURE), len(data)
    inflate = zlib.decompressobj()
    while pos + 12 <= end:
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        body_end = pos + 8 + length
        if body_end + 4 > end:
            return "truncated PNG"
        (crc,) = struct.unpack_from(">I", data, body_end)
        if zlib.crc32(data[pos + 4 : body_end]) != crc:
            return f"damaged PNG (bad checksum in its {kind.decode('latin-1')!r} chunk)"
        if kind == b"IDAT":
            try:  # the output is thrown away in bounded pieces: memory stays small whatever it declares
                pending = data[pos + 8 : body_end]
                while pending:
                    inflate.decompress(pending, 1 << 20)
                    pending = inflate.unconsumed_tail
            except zlib.error as e:
                return f"damaged PNG (its image data does not decompress: {e})"
        if kind == b"IEND":
            return None if inflate.eof else "damaged PNG (its image data ends early)"
        pos = body_end + 4
    return "truncated PNG"


PIL_MODULES = r"PIL(\.|$)"


def quiet_pillow() -> None:
    """Keep Pillow's warnings off stderr: it reports a damaged file (a cut TIFF: 'Corrupt EXIF data')
    as a Python warning, printed beside our one failure line per input. The decode says what is wrong
    and the input's failure record carries it. Added once per process (the warnings filter list is
    shared by the reading threads), and again only if something reset the filters."""
    if not any(f[0] == "ignore" and getattr(f[3], "pattern", None) == PIL_MODULES for f in warnings.filters):
        warnings.filterwarnings("ignore", module=PIL_MODULES)


def pil_open(source: Any) -> Any:
    """Pillow's own `Image.open`, with its warnings kept off stderr (`quiet_pillow`). Importing
    ultralytics replaces it with one that, on a file Pillow cannot identify, calls ultralytics'
    requirement checker for a HEIF plugin: a log line about an AutoUpdate and, with YOLO_OFFLINE=0, a pip
    install in the middle of a run, set off by one odd input."""
    from PIL import Image

    quiet_pillow()
    patches = sys.modules.get("ultralytics.utils.patches")
    return getattr(patches, "_image_open", Image.open)(source)


def _strict_decode_fails(data: bytes) -> bool:
    """Some decoders fill a JPEG cut short with grey; a strict decoder tells. Cameras that append data
    after the end marker (motion photos) pass, since the strict decoder stops at the marker."""
    try:
        with pil_open(io.BytesIO(data)) as im:
            im.load()
    except Exception:  # any failure of the strict decoder says the same: the JPEG is damaged
        return True
    return False


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's header, without decoding it; None when the header is unknown."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # our own budget (`max_pixels`) is applied by the caller
    try:
        with pil_open(io.BytesIO(data)) as im:
            return im.size
    except Exception:  # unknown or damaged header; an optional Pillow plugin missing its module
        return None


MAX_PIXELS_LIMIT = 4 * 10**9  # the most --max-pixels allows: 12 GB decoded, beyond any real picture


def parse_pixels(text: str) -> int:
    """'100M', '2.5M', '250000' or '1G' to a number of pixels (K, M, G are powers of 1000), from 1 to
    4G; 'inf', 'nan' and the like are refused."""
    scale = {"K": 10**3, "M": 10**6, "G": 10**9}.get(text.strip()[-1:].upper(), 1)
    number = text.strip()[:-1] if scale > 1 else text.strip()
    try:
        value = float(number) * scale
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not number.isascii():
        raise ValueError(f"'{text}' is not a number of pixels (e.g. 100M, 250000)")
    if not 1 <= value <= MAX_PIXELS_LIMIT:
        raise ValueError(f"'{text}' must be from 1 pixel to {MAX_PIXELS_LIMIT // 10**9}G")
    return int(value)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Bytes to an 8-bit BGR image, as ultralytics reads files: grey, RGBA and 16-bit become BGR uint8.

    The header is read first: an image over `max_pixels` is refused before any memory is spent on it.
    """
    if not data:
        raise InputError("empty file")
    size = image_size(data)
    if size and size[0] * size[1] > max_pixels:
        w, h = size
        raise InputError(
            f"image is {w}x{h} = {w * h / 1e6:.0f} million pixels, over the limit of "
            f"{max_pixels / 1e6:g} million pixels (--max-pixels)"
        )
    if data.startswith(PNG_SIGNATURE) and (problem := _png_problem(data)):
        raise InputError(problem)
    cv2 = quiet_opencv()
    import numpy as np

    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as e:  # OpenCV's own limits (pixels, dimensions) or a decoder failure
        raise InputError(f"not a readable image ({_first_line(e.err) or 'OpenCV error'})") from e
    missing_end = _jpeg_missing_end(data)
    if image is None:
        if data.startswith((b"II*\x00", b"MM\x00*")):
            raise InputError("not a readable image (a damaged or cut-short TIFF)")
        raise InputError("truncated JPEG" if missing_end else "not a readable image")
    if missing_end and _strict_decode_fails(data):
        raise InputError("truncated JPEG")
    return image


@dataclass(frozen=True, slots=True)
class FileStamp:
    """Size and modification time of an input file: with its path, what resume keys an input by."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStamp:
        return cls(st.st_size, st.st_mtime_ns)


def input_path(item: ImageInput) -> str | None:
    """The absolute path of a file input (as found, links not resolved); None for URLs."""
    return os.path.abspath(item.path) if item.path is not None and item.url is None else None


def current_stamp(item: ImageInput) -> FileStamp | None:
    """The stamp of a file input now; None for URLs, inputs that failed discovery, and missing files."""
    if item.error or item.path is None:
        return None
    try:
        return FileStamp.of(item.path.stat())
    except OSError:
        return None


def _missing(path: Path, loop: bool = False) -> str:
    """Why a path that cannot be opened is missing: gone, a symlink to nowhere, or a loop of links."""
    if os.path.islink(path):
        target = os.readlink(path)
        if loop:
            return f"symlink loop (it points to {target}, which leads back to itself)"
        return f"broken symlink (it points to {target}, which does not exist)"
    return "file vanished before it was read"


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"))


def _open_regular(path: Path, what: str) -> tuple[int, os.stat_result]:
    """An open descriptor of a regular file and its fstat; raises InputError saying what it is instead.

    Opened non-blocking and checked with fstat before anything is read, so a FIFO, socket or device
    that carries an image's name is refused at once instead of blocking the run for ever.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as e:
        raise InputError(_missing(path)) from e
    except IsADirectoryError as e:
        raise InputError(f"is a folder, not an {what}") from e
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InputError(_missing(path, loop=True)) from e
        raise InputError(f"cannot read {what}: {e.strerror or e}") from e
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"is a folder, not an {what}")
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "a special file")
            raise InputError(f"not a regular file ({kind}); not read")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def check_regular(path: Path, what: str = "file") -> os.stat_result:
    """The stat of a regular file (see `_open_regular`); raises InputError otherwise."""
    fd, st = _open_regular(path, what)
    os.close(fd)
    return st


def read_regular(path: Path, max_bytes: int = MAX_FILE_BYTES, what: str = "file") -> tuple[bytes, FileStamp]:
    """The bytes of a regular file and the stamp of exactly those bytes (fstat of the open file)."""
    fd, st = _open_regular(path, what)
    try:
        if st.st_size > max_bytes:
            raise InputError(f"{what} is {st.st_size / 2**20:.0f} MiB, larger than {max_bytes / 2**20:g} MiB")
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = -1
            return f.read(max_bytes + 1), FileStamp.of(st)
    except OSError as e:
        raise InputError(f"cannot read {what}: {e.strerror or e}") from e
    finally:
        if fd >= 0:
            os.close(fd)


def read_file(path: Path) -> tuple[bytes, FileStamp]:
    """The bytes of an image file and their stamp; raises InputError (see `read_regular`)."""
    return read_regular(path)


def read_image(
    item: ImageInput, url_timeout: float = DEFAULT_URL_TIMEOUT_S, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Read and decode one input; raises InputError for anything the user should be told about."""
    if item.error:
        raise InputError(item.error)
    if item.url:
        return decode_image(fetch_url(item.url, url_timeout), max_pixels)
    assert item.path is not None
    return decode_image(read_file(item.path)[0], max_pixels)
