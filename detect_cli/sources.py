"""Turning the user's SOURCE arguments into inputs: files, folders, globs, http(s) URLs and @lists for
images; for videos also streams (rtsp, rtmp, http) and webcam indexes.

Discovery never raises for one bad source: a missing path, an empty folder or a refused URL becomes an
`ImageInput` carrying its `error`, so it is recorded in results.jsonl and the run goes on.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, TypeVar

from detect_cli.errors import InputError, NoInputsError

if TYPE_CHECKING:
    import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)
URL_SCHEMES = ("http", "https")
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https")
DEFAULT_URL_TIMEOUT_S = 15.0
MAX_URL_BYTES = 100 * 1024 * 1024  # an image larger than this is refused rather than filling memory
MAX_VIDEO_URL_BYTES = 4 * 1024**3  # a video URL is downloaded to a temporary file, up to this size


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


def is_url(text: str) -> bool:
    return "://" in text


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


def _walk_images(
    root: Path,
    recursive: bool,
    problems: list[WalkProblem] | None = None,
    suffixes: frozenset[str] = IMAGE_SUFFIXES,
) -> Iterator[Path]:
    """Image files below root, sorted, depth first, one folder listing in memory at a time.

    Symlinked folders are followed, each real folder once: a link back to a folder already on the walk
    (a loop) is skipped and noted. A folder that cannot be listed is noted, never fatal.
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


def _glob_base(pattern: str) -> Path:
    """The folder part of a pattern before its first wildcard: outputs mirror paths below it."""
    parts: list[str] = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


Warn = Callable[[str], None]


def _from_one(
    source: str,
    recursive: bool,
    base_dir: Path | None,
    warn: Warn | None = None,
    suffixes: frozenset[str] = IMAGE_SUFFIXES,
) -> Iterator[ImageInput]:
    kind = "videos" if suffixes is VIDEO_SUFFIXES else "images"
    if source.startswith("@"):
        yield from _from_list(Path(source[1:]), recursive, warn)
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
    if glob.has_magic(source):
        base = _glob_base(str(path))
        matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        files = [p for p in matches if p.is_file() and p.suffix.lower() in suffixes]
        if not files:
            yield ImageInput(source, PurePosixPath(_safe_name(source)), error=f"pattern matched no {kind}")
        for f in files:
            rel = PurePosixPath(_dir_label(base), *f.relative_to(base).parts)
            yield ImageInput(str(f), rel, path=f)
    elif path.is_dir():
        found = False
        problems: list[WalkProblem] = []
        for f in _walk_images(path, recursive, problems, suffixes):
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
    elif path.is_file():
        yield ImageInput(str(path), PurePosixPath(path.name), path=path)
    else:
        yield ImageInput(
            str(path), PurePosixPath(_safe_name(path.name)), path=path, error="no such file or folder"
        )


def _list_entries(list_file: Path) -> list[str]:
    """One source per line; '#' starts a comment. Raises OSError when the file cannot be read."""
    entries = []
    for line in list_file.read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip() if not is_url(line) else line.strip()
        if entry:
            entries.append(entry)
    return entries


def _from_list(list_file: Path, recursive: bool, warn: Warn | None) -> Iterator[ImageInput]:
    """Relative paths in a list are relative to the list file."""
    try:
        entries = _list_entries(list_file)
    except OSError as e:
        yield ImageInput(
            f"@{list_file}",
            PurePosixPath(_safe_name(list_file.name)),
            error=f"cannot read list file: {e.strerror or e}",
        )
        return
    for entry in entries:
        yield from _from_one(entry, recursive, list_file.parent, warn)


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


def discover_images(
    sources: Sequence[str], recursive: bool = True, warn: Warn | None = None
) -> list[ImageInput]:
    """Expand SOURCE arguments into image inputs, in the order given (folders sorted).

    Sources that name nothing usable (and folders that cannot be listed) are kept as error records
    beside the good ones; when there are no good ones at all, NoInputsError says why. Symlink loops are
    skipped and passed to `warn`. The result is a list of small records (about 650 bytes per input):
    the total is needed up front for progress and the resume plan; a million inputs hold about 1 GB.
    """
    items = list(_unique_rel(item for s in sources for item in _from_one(s, recursive, None, warn)))
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


def _videos_from_one(source: str, recursive: bool, base_dir: Path | None) -> Iterator[VideoInput]:
    if source.isdigit() and not (base_dir or Path()).joinpath(source).exists():
        yield VideoInput(f"webcam {source}", PurePosixPath(f"webcam{int(source)}"), webcam=int(source))
    elif is_url(source):
        yield _video_url(source)
    elif source.startswith("@"):
        list_file = Path(source[1:]) if base_dir is None else base_dir / source[1:]
        try:
            entries = _list_entries(list_file)
        except OSError as e:
            yield VideoInput(
                source, PurePosixPath(_safe_name(list_file.name)), error=f"cannot read list file: {e}"
            )
            return
        for entry in entries:
            yield from _videos_from_one(entry, recursive, list_file.parent)
    else:
        for item in _from_one(source, recursive, base_dir, suffixes=VIDEO_SUFFIXES):
            yield VideoInput(item.source, item.rel_path.with_suffix(""), path=item.path, error=item.error)


def discover_videos(sources: Sequence[str], recursive: bool = True) -> list[VideoInput]:
    """Expand SOURCE arguments into videos, in the order given (folders sorted), like `discover_images`.

    A digit is a webcam index (unless a file of that name exists); rtsp/rtmp URLs and http(s) URLs
    without a video file suffix are live streams. Whether each can be opened is checked later.
    """
    items = list(_unique_rel(item for s in sources for item in _videos_from_one(s, recursive, None)))
    if not items:
        raise NoInputsError("no inputs given")
    if all(item.error for item in items):
        reasons = "; ".join(f"{item.source}: {item.error}" for item in items[:3])
        raise NoInputsError(f"no videos found ({reasons}{'; …' if len(items) > 3 else ''})")
    return items


# --- reading --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _url_errors(timeout: float) -> Iterator[None]:
    """Any failure of a URL request becomes an InputError with a short reason."""
    try:
        yield
    except urllib.error.HTTPError as e:
        raise InputError(f"HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise InputError(f"cannot fetch URL: {e.reason}") from e
    except TimeoutError as e:
        raise InputError(f"timed out after {timeout:g}s") from e
    except OSError as e:
        raise InputError(f"cannot fetch URL: {e}") from e


def fetch_url(url: str, timeout: float = DEFAULT_URL_TIMEOUT_S) -> bytes:
    """GET an http(s) URL; any failure becomes an InputError with a short reason."""
    request = urllib.request.Request(url, headers={"User-Agent": "detect-cli"})
    with _url_errors(timeout), urllib.request.urlopen(request, timeout=timeout) as response:
        data = response.read(MAX_URL_BYTES + 1)
    if len(data) > MAX_URL_BYTES:
        raise InputError(f"larger than {MAX_URL_BYTES // 2**20} MiB")
    return data


def download_url(url: str, dest: Path, timeout: float = DEFAULT_URL_TIMEOUT_S) -> Path:
    """GET an http(s) URL into `dest`, streamed in chunks (a video need not fit in memory)."""
    request = urllib.request.Request(url, headers={"User-Agent": "detect-cli"})
    size = 0
    with _url_errors(timeout), urllib.request.urlopen(request, timeout=timeout) as response:
        with dest.open("wb") as f:
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if size > MAX_VIDEO_URL_BYTES:
                    raise InputError(f"larger than {MAX_VIDEO_URL_BYTES // 2**30} GiB")
                f.write(chunk)
    if size == 0:
        raise InputError("empty file")
    return dest


def _jpeg_missing_end(data: bytes) -> bool:
    return data.startswith(b"\xff\xd8") and not data.rstrip(b"\x00\r\n").endswith(b"\xff\xd9")


def _strict_decode_fails(data: bytes) -> bool:
    """Some decoders fill a JPEG cut short with grey; a strict decoder tells. Cameras that append data
    after the end marker (motion photos) pass, since the strict decoder stops at the marker."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except OSError:
        return True
    return False


def decode_image(data: bytes) -> np.ndarray:
    """Bytes to an 8-bit BGR image, as ultralytics reads files: grey, RGBA and 16-bit become BGR uint8."""
    import cv2
    import numpy as np

    if not data:
        raise InputError("empty file")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    missing_end = _jpeg_missing_end(data)
    if image is None:
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


def read_file(path: Path) -> tuple[bytes, FileStamp]:
    """The bytes of a file and the stamp of exactly those bytes (fstat of the open file)."""
    try:
        with path.open("rb") as f:
            stamp = FileStamp.of(os.fstat(f.fileno()))
            return f.read(), stamp
    except FileNotFoundError as e:
        raise InputError("file vanished before it was read") from e
    except IsADirectoryError as e:
        raise InputError("is a folder, not an image") from e
    except OSError as e:
        raise InputError(f"cannot read file: {e.strerror or e}") from e


def read_image(item: ImageInput, url_timeout: float = DEFAULT_URL_TIMEOUT_S) -> np.ndarray:
    """Read and decode one input; raises InputError for anything the user should be told about."""
    if item.error:
        raise InputError(item.error)
    if item.url:
        return decode_image(fetch_url(item.url, url_timeout))
    assert item.path is not None
    return decode_image(read_file(item.path)[0])
