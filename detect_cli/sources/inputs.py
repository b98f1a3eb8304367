"""What one SOURCE argument names, and the records discovery makes of it: `ImageInput`, `VideoInput`,
the suffixes that make an image or a video, output names that cannot escape the run folder.
"""

from __future__ import annotations

import glob
import os
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from detect_cli.errors import BadOptionError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)
URL_SCHEMES = ("http", "https")
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https")


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


def names_a_list(source: str, base_dir: Path | None = None) -> bool:
    """Whether SOURCE is an @list: it starts with '@', unless a file of that very name exists and the list
    it would name does not (a picture called '@home.jpg' is that picture)."""
    if not source.startswith("@"):
        return False
    at = base_dir or Path()
    return not (os.path.lexists(at / source) and not os.path.lexists(at / source[1:]))


def named_kind(source: str) -> Literal["image", "video"] | None:
    """What one SOURCE names by its suffix when it is one file (that exists) or a URL to one: an
    image or a video; None for folders, globs, lists, streams, webcams and other suffixes."""
    if names_a_list(source) or (glob.has_magic(source) and not os.path.lexists(source)):
        return None
    if is_url(source):
        suffix = PurePosixPath(urllib.parse.urlsplit(source).path).suffix.lower()
    elif os.path.isfile(source):
        suffix = Path(source).suffix.lower()
    else:
        return None
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "input"


def url_rel_path(url: str) -> PurePosixPath:
    """A file name derived from a URL that can never escape the output folder (no '/', no '..')."""
    parts = urllib.parse.urlsplit(url)
    name = safe_name(f"{parts.netloc}{parts.path}")
    if parts.query:
        name = f"{name}_{safe_name(parts.query)}"
    if PurePosixPath(name).suffix.lower() not in IMAGE_SUFFIXES:
        name += ".jpg"
    return PurePosixPath("urls", name)


@dataclass(frozen=True, slots=True)
class VideoInput:
    """One video to process: a file, a URL (to a file, or a live stream) or a webcam index.

    `rel_path` names its outputs under the run folder without a suffix: the annotated video is
    `<rel_path>.mp4` (or the container the codec needs) and saved frames go in `<rel_path>/`. Discovery
    gives it by the rule of `sources.names`: `clip` for clip.mp4, `clip.mp4` beside clip.mov.
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


# By a run's name: its command, and the one that reads the other kind of input.
COMMANDS = {
    "image": ("detect image", "detect video"),
    "yolo-image": ("detect yolo image", "detect yolo video"),
    "explain": ("detect explain", "detect video"),
    "video": ("detect video", "detect image"),
    "yolo-video": ("detect yolo video", "detect yolo image"),
}


def refuse_other_kind(sources: Iterable[str], wanted: str, run_name: str) -> None:
    """A file (or URL) whose suffix says it is the other kind than this command reads is a mistake of
    command, said before any model loads: a video given to `detect image` would fail as an unreadable
    picture after the model loaded, a picture given to `detect video` would quietly become a one-frame
    video. Folders and globs pick their own kind and are not refused."""
    import shlex

    this, other = COMMANDS.get(
        run_name, (f"detect {wanted}", "detect image" if wanted == "video" else "detect video")
    )
    for source in sources:
        kind = named_kind(source)
        if kind is not None and kind != wanted:
            what, reads = ("a video", "pictures") if kind == "video" else ("a picture", "videos")
            raise BadOptionError(
                f"{source} is {what}; `{this}` reads {reads}: run `{other} {shlex.quote(source)}`"
            )
