"""Turning the user's SOURCE arguments into inputs: files, folders, globs, http(s) URLs and @lists.

Discovery never raises for one bad source: a missing path, an empty folder or a refused URL becomes an
`ImageInput` carrying its `error`, so it is recorded in results.jsonl and the run goes on.
"""

from __future__ import annotations

import glob
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from detect_cli.errors import InputError, NoInputsError

if TYPE_CHECKING:
    import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
URL_SCHEMES = ("http", "https")
DEFAULT_URL_TIMEOUT_S = 15.0
MAX_URL_BYTES = 100 * 1024 * 1024  # an image larger than this is refused rather than filling memory


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


def _walk_images(root: Path, recursive: bool, problems: list[WalkProblem] | None = None) -> Iterator[Path]:
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
                if Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
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
            elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
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


def _from_one(source: str, recursive: bool, base_dir: Path | None, warn: Warn | None) -> Iterator[ImageInput]:
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
        files = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            yield ImageInput(source, PurePosixPath(_safe_name(source)), error="pattern matched no images")
        for f in files:
            rel = PurePosixPath(_dir_label(base), *f.relative_to(base).parts)
            yield ImageInput(str(f), rel, path=f)
    elif path.is_dir():
        found = False
        problems: list[WalkProblem] = []
        for f in _walk_images(path, recursive, problems):
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
                error="folder contains no images (" + ", ".join(sorted(IMAGE_SUFFIXES)) + ")",
            )
    elif path.is_file():
        yield ImageInput(str(path), PurePosixPath(path.name), path=path)
    else:
        yield ImageInput(
            str(path), PurePosixPath(_safe_name(path.name)), path=path, error="no such file or folder"
        )


def _from_list(list_file: Path, recursive: bool, warn: Warn | None) -> Iterator[ImageInput]:
    """One source per line; '#' starts a comment; relative paths are relative to the list file."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        yield ImageInput(
            f"@{list_file}",
            PurePosixPath(_safe_name(list_file.name)),
            error=f"cannot read list file: {e.strerror or e}",
        )
        return
    for line in lines:
        entry = line.split("#", 1)[0].strip() if not is_url(line) else line.strip()
        if entry:
            yield from _from_one(entry, recursive, list_file.parent, warn)


def _unique_rel(items: Iterable[ImageInput]) -> Iterator[ImageInput]:
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


# --- reading --------------------------------------------------------------------------------------


def fetch_url(url: str, timeout: float = DEFAULT_URL_TIMEOUT_S) -> bytes:
    """GET an http(s) URL; any failure becomes an InputError with a short reason."""
    request = urllib.request.Request(url, headers={"User-Agent": "detect-cli"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(MAX_URL_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise InputError(f"HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise InputError(f"cannot fetch URL: {e.reason}") from e
    except TimeoutError as e:
        raise InputError(f"timed out after {timeout:g}s") from e
    except OSError as e:
        raise InputError(f"cannot fetch URL: {e}") from e
    if len(data) > MAX_URL_BYTES:
        raise InputError(f"larger than {MAX_URL_BYTES // 2**20} MiB")
    return data


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
