"""SOURCE arguments → inputs: files, folders, globs, URLs and @lists for images; for videos also streams
(rtsp, rtmp, http) and webcam indexes.

Discovery never raises for one bad source: a missing path, an empty folder or a refused URL becomes an
input carrying its `error`, so it is recorded in results.jsonl and the run goes on.
"""

from __future__ import annotations

import glob
import os
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TypeVar

from detect_cli.errors import InputError, NoInputsError
from detect_cli.sources.inputs import (
    IMAGE_SUFFIXES,
    STREAM_SCHEMES,
    URL_SCHEMES,
    VIDEO_SUFFIXES,
    ImageInput,
    VideoInput,
    ascii_int,
    is_url,
    names_a_list,
    safe_name,
    url_rel_path,
)
from detect_cli.sources.lists import list_entries, list_problem
from detect_cli.sources.names import name_outputs, unique_stems
from detect_cli.sources.walk import WalkProblem, dir_label, split_pattern, under_skipped, walk_files

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
    """One SOURCE argument's inputs: an @list, a URL, a glob, a folder or a file."""
    if names_a_list(source, base_dir):
        list_file = Path(source[1:])
        if base_dir is not None and not list_file.is_absolute():
            list_file = base_dir / list_file
        yield from _from_list(list_file, recursive, warn, lists, skip)
        return
    if is_url(source):
        yield _from_url(source)
        return
    path = Path(source)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    # A name that exists is that file or folder, even when it reads as a pattern ('IMG [1].jpg' would
    # match 'IMG 1.jpg'); only a source that names nothing is expanded as a glob.
    if glob.has_magic(source) and not os.path.lexists(path):
        yield from _from_glob(source, path, suffixes, skip)
    elif path.is_dir():
        yield from _from_folder(source, path, recursive, warn, suffixes, skip)
    elif os.path.lexists(path):  # a file, or a FIFO or broken link that reading will name as such
        yield ImageInput(str(path), PurePosixPath(path.name), path=path)
    else:
        yield ImageInput(
            str(path), PurePosixPath(safe_name(path.name)), path=path, error="no such file or folder"
        )


def _kind(suffixes: frozenset[str]) -> str:
    return "videos" if suffixes is VIDEO_SUFFIXES else "images"


def _from_url(source: str) -> ImageInput:
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    if scheme not in URL_SCHEMES:
        return ImageInput(
            source,
            url_rel_path(source),
            url=source,
            error=f"unsupported URL scheme '{scheme}': only http and https are fetched",
        )
    return ImageInput(source, url_rel_path(source), url=source)


def _from_glob(
    source: str, path: Path, suffixes: frozenset[str], skip: frozenset[str]
) -> Iterator[ImageInput]:
    """The files a pattern matches, sorted, named below the folder where the pattern starts."""
    base, pattern = split_pattern(path)
    matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    files = [
        p
        for p in matches
        if p.suffix.lower() in suffixes and not p.is_dir() and not under_skipped(p, base, skip)
    ]
    if not files:
        yield ImageInput(
            source, PurePosixPath(safe_name(source)), error=f"pattern matched no {_kind(suffixes)}"
        )
    for f in files:
        rel = PurePosixPath(dir_label(base), *f.relative_to(base).parts)
        yield ImageInput(str(f), rel, path=f)


def _from_folder(
    source: str,
    path: Path,
    recursive: bool,
    warn: Warn | None,
    suffixes: frozenset[str],
    skip: frozenset[str],
) -> Iterator[ImageInput]:
    """A folder's files; a sub-folder that cannot be listed is a failed input, a symlink loop a warning."""
    found = False
    problems: list[WalkProblem] = []
    for f in walk_files(path, recursive, problems, suffixes, skip):
        found = True
        rel = PurePosixPath(dir_label(path), *f.relative_to(path).parts)
        yield ImageInput(str(f), rel, path=f)
    for p in problems:
        if p.loop:
            if warn:
                warn(p.message)
        else:  # its images could not be listed: a failed input, so the run says so
            yield ImageInput(str(p.path), PurePosixPath(safe_name(str(p.path))), path=p.path, error=p.message)
    if not found and not any(not p.loop for p in problems):
        yield ImageInput(
            source,
            PurePosixPath(safe_name(source)),
            path=path,
            error=f"folder contains no {_kind(suffixes)} (" + ", ".join(sorted(suffixes)) + ")",
        )


def _from_list(
    list_file: Path,
    recursive: bool,
    warn: Warn | None,
    lists: tuple[str, ...] = (),
    skip: frozenset[str] = frozenset(),
) -> Iterator[ImageInput]:
    """Relative paths in a list (other lists too) are relative to the list file."""
    problem, lists = list_problem(list_file, lists)
    try:
        if problem:
            raise InputError(problem)
        entries = list_entries(list_file)
    except InputError as e:
        yield ImageInput(f"@{list_file}", PurePosixPath(safe_name(list_file.name)), error=str(e))
        return
    for entry in entries:
        yield from _from_one(entry, recursive, list_file.parent, warn, lists=lists, skip=skip)


Input = TypeVar("Input", "ImageInput", "VideoInput")


def _drop_repeats(items: Iterable[Input]) -> Iterator[Input]:
    """Each file (or URL, or webcam) once, where it first appears; failed inputs are all kept."""
    seen: set[str] = set()
    for item in items:
        key = item.url or (os.path.realpath(item.path) if item.path else item.source)
        if item.error is None:
            if key in seen:
                continue
            seen.add(key)
        yield item


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
    items = name_outputs(list(_drop_repeats(found)))  # each input's outputs its own (sources.names)
    if not items:
        raise NoInputsError("no inputs given")
    if all(item.error for item in items):  # nothing to run: say why, rather than write a run of failures
        reasons = "; ".join(f"{item.source}: {item.error}" for item in items[:3])
        raise NoInputsError(f"no inputs found ({reasons}{'; …' if len(items) > 3 else ''})")
    return items


def _video_url(source: str) -> VideoInput:
    parts = urllib.parse.urlsplit(source)
    scheme = parts.scheme.lower()
    path = parts.path
    if suffix := PurePosixPath(path).suffix:
        path = path[: -len(suffix)]
    name = safe_name(f"{parts.netloc}{path}")
    if parts.query:  # cameras often tell channels apart by query alone
        name = f"{name}_{safe_name(parts.query)}"
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
    elif names_a_list(source, base_dir):
        list_file = Path(source[1:]) if base_dir is None else base_dir / source[1:]
        problem, lists = list_problem(list_file, lists)
        try:
            if problem:
                raise InputError(problem)
            entries = list_entries(list_file)
        except InputError as e:
            yield VideoInput(source, PurePosixPath(safe_name(list_file.name)), error=str(e))
            return
        for entry in entries:
            yield from _videos_from_one(entry, recursive, list_file.parent, lists, skip)
    else:
        for item in _from_one(source, recursive, base_dir, suffixes=VIDEO_SUFFIXES, skip=skip):
            yield VideoInput(item.source, item.rel_path.with_suffix(""), path=item.path, error=item.error)


def _video_suffix(item: VideoInput) -> str:
    """The suffix a video's name was found with (none for streams and webcams)."""
    if item.path is not None:
        return item.path.suffix
    return PurePosixPath(urllib.parse.urlsplit(item.url).path).suffix if item.url_is_file and item.url else ""


def _name_videos(items: list[VideoInput]) -> list[VideoInput]:
    """Videos named by the rule pictures are (sources.names): a.mp4 beside A.mov gives a.mp4.mp4 and
    A.mov.mp4 (and frame folders a.mp4/, A.mov/), never one video over the other; and as a video's
    outputs include a folder of its name (its frames), a.avi beside a.mp4.mov gives a.avi.mp4 and
    a.mp4.mp4, never the video a.mp4 and the frames folder a.mp4/."""
    names = unique_stems([(item.rel_path, _video_suffix(item)) for item in items], folders=True)
    return [
        item if name == item.rel_path else replace(item, rel_path=name)
        for item, name in zip(items, names, strict=True)
    ]


def discover_videos(
    sources: Sequence[str], recursive: bool = True, exclude: Iterable[Path] = ()
) -> list[VideoInput]:
    """Expand SOURCE arguments into videos, in the order given (folders sorted), like `discover_images`.

    A number in ASCII digits is a webcam index (unless a file of that name exists); rtsp/rtmp URLs and
    http(s) URLs without a video file suffix are live streams. Whether each can be opened is checked later.
    """
    skip = _skip_set(exclude)
    found = (item for s in sources for item in _videos_from_one(s, recursive, None, skip=skip))
    items = _name_videos(list(_drop_repeats(found)))
    if not items:
        raise NoInputsError("no inputs given")
    if all(item.error for item in items):
        reasons = "; ".join(f"{item.source}: {item.error}" for item in items[:3])
        raise NoInputsError(f"no videos found ({reasons}{'; …' if len(items) > 3 else ''})")
    return items
