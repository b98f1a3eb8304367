"""What a tracked run writes and measures: the tracks themselves (`TrackBook` → tracks.csv), MOTChallenge
result files (`MotWriter`), the annotated video with ids and trails (`TrackedVideoWriter`), the sink that
tracks each frame before the others write it (`TrackingSink`), and label-free stability figures.

Stability, without labels (`Stability`): tracks per minute of video, the median and 10th percentile of
track length (frames a track held a box), fragmentation (a track that ends while a new one of the same
class starts within `FRAGMENT_GAP` processed frames at the same place, IoU > 0.5: one object given two
ids) and flicker (the share of the tracks' lives, first to last frame, in which their object was missed
for one or two frames in a row). Lengths and gaps count processed frames (every `--vid-stride`th).
"""

from __future__ import annotations

import csv
import io
import os
import statistics
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from detect_cli.errors import OutputError
from detect_cli.render import draw_detections
from detect_cli.results import Detection, ImageResult
from detect_cli.tracking import RunTracker, TrackedResult, track_ids
from detect_cli.writers import AnnotatedVideoWriter, Failure, Sink, atomic_write_bytes, close_all

if TYPE_CHECKING:
    import numpy as np

TRACKS_CSV = "tracks.csv"
MOT_FOLDER = "mot"
FRAGMENT_GAP = 5  # processed frames between a track's end and a new one's start that still make a fragment
FRAGMENT_IOU = 0.5
FLICKER_GAP = 2  # misses of one or two frames are flicker; longer ones are occlusions or exits
TRAIL = 30  # frames of a track's centres drawn as its trail


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    """One track's life: where it starts and ends (source frame, time, and processed-frame step), how
    often it held a box, and what it was."""

    source: str
    track_id: int
    segment: int  # which uninterrupted piece of the source (a reconnect starts the next)
    first_frame: int
    first_time_s: float | None
    first_step: int
    first_box: tuple[float, float, float, float]
    last_frame: int = 0
    last_time_s: float | None = None
    last_step: int = 0
    last_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    seen: int = 0
    confidence_sum: float = 0.0
    flicker: int = 0  # frames of its life missed in gaps of one or two
    classes: Counter[tuple[int, str]] = field(default_factory=Counter)

    @property
    def life(self) -> int:
        return self.last_step - self.first_step + 1

    @property
    def class_id_name(self) -> tuple[int, str]:
        return self.classes.most_common(1)[0][0]


@dataclass(frozen=True)
class Stability:
    """Label-free figures of a run's tracks (see the module's doc)."""

    tracks: int
    minutes: float
    tracks_per_minute: float | None
    median_length: float | None
    p10_length: float | None
    fragments: int
    flicker: float | None


class TrackBook:
    """Every track of a run, built frame by frame from tracked results (memory: one small record per
    track, not per box)."""

    def __init__(self) -> None:
        self.tracks: dict[tuple[str, int], Track] = {}
        self.frames: Counter[str] = Counter()  # processed frames per source
        self._segment: Counter[str] = Counter()

    def add(self, result: ImageResult) -> None:
        if not result.ok:
            return
        source = result.source
        step = self.frames[source]
        self.frames[source] += 1
        if not isinstance(result, TrackedResult):
            return
        if result.restart:
            self._segment[source] += 1
        frame = result.frame if result.frame is not None else step
        for det, track_id in result.tracked():
            t = self.tracks.get((source, track_id))
            if t is None:
                t = self.tracks[source, track_id] = Track(
                    source, track_id, self._segment[source], frame, result.time_s, step, det.xyxy
                )
            elif step - t.last_step - 1 <= FLICKER_GAP:
                t.flicker += step - t.last_step - 1
            t.last_frame, t.last_time_s, t.last_step, t.last_box = frame, result.time_s, step, det.xyxy
            t.seen += 1
            t.confidence_sum += det.confidence
            t.classes[det.class_id, det.class_name] += 1

    def fragments(self) -> int:
        """New tracks that continue one that just ended: same source and segment, same class, starting
        within FRAGMENT_GAP processed frames after it at IoU > 0.5 (each new track counted once)."""
        by_place: dict[tuple[str, int, str], list[Track]] = {}
        for t in self.tracks.values():
            by_place.setdefault((t.source, t.segment, t.class_id_name[1]), []).append(t)
        count = 0
        for group in by_place.values():
            for new in group:
                if any(
                    0 < new.first_step - old.last_step <= FRAGMENT_GAP
                    and _iou(old.last_box, new.first_box) > FRAGMENT_IOU
                    for old in group
                    if old is not new
                ):
                    count += 1
        return count

    def stability(self, fps: Mapping[str, float]) -> Stability:
        """The figures, with `fps` the processed frames per second of each source (its fps / stride)."""
        import numpy as np

        minutes = sum(n / fps.get(s, 30.0) for s, n in self.frames.items()) / 60
        lengths = [t.seen for t in self.tracks.values()]
        life = sum(t.life for t in self.tracks.values())
        return Stability(
            tracks=len(lengths),
            minutes=minutes,
            tracks_per_minute=len(lengths) / minutes if minutes > 0 else None,
            median_length=float(statistics.median(lengths)) if lengths else None,
            p10_length=float(np.percentile(lengths, 10)) if lengths else None,
            fragments=self.fragments(),
            flicker=sum(t.flicker for t in self.tracks.values()) / life if life else None,
        )

    def csv_text(self) -> str:
        """tracks.csv: one row per track, in the order they started."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(
            (
                "source",
                "track_id",
                "class_id",
                "class_name",
                "first_frame",
                "last_frame",
                "first_time_s",
                "last_time_s",
                "frames_seen",
                "mean_confidence",
            )
        )
        for t in self.tracks.values():
            class_id, class_name = t.class_id_name
            w.writerow(
                (
                    t.source,
                    t.track_id,
                    class_id,
                    class_name,
                    t.first_frame,
                    t.last_frame,
                    "" if t.first_time_s is None else f"{t.first_time_s:.4f}",
                    "" if t.last_time_s is None else f"{t.last_time_s:.4f}",
                    t.seen,
                    f"{t.confidence_sum / t.seen:.6f}",
                )
            )
        return buf.getvalue()

    def write_csv(self, path: Path) -> Path:
        try:
            atomic_write_bytes(path, self.csv_text().encode("utf-8", "backslashreplace"))
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from e
        return path


def mot_lines(result: TrackedResult) -> str:
    """A frame's tracked boxes as MOTChallenge result lines: `frame,id,x,y,w,h,conf,-1,-1,-1`, the
    frame 1-based (the source's frame index + 1)."""
    frame = (result.frame or 0) + 1
    lines = []
    for det, track_id in result.tracked():
        x1, y1, x2, y2 = det.xyxy
        box = f"{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f}"
        lines.append(f"{frame},{track_id},{box},{det.confidence:.6f},-1,-1,-1\n")
    return "".join(lines)


class MotWriter(Sink):
    """One MOTChallenge results file per source, at root/<source's rel_path>.txt, written under a
    temporary name and renamed when the source ends (or the run stops)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.written: list[Path] = []
        self._key: PurePosixPath | None = None
        self._f: IO[str] | None = None
        self._tmp = self._final = root

    @staticmethod
    def target(root: Path, key: PurePosixPath) -> Path:
        return root / key.with_name(key.name + ".txt")

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        if rel_path.parent != self._key:
            self._finish()
            self._key = rel_path.parent
            self._final = self.target(self.root, rel_path.parent)
            self._tmp = self._final.with_name(f".{self._final.name}.part")
            self._final.parent.mkdir(parents=True, exist_ok=True)
            self._f = self._tmp.open("w", encoding="utf-8", newline="")
        if isinstance(result, TrackedResult) and self._f is not None:
            self._f.write(mot_lines(result))

    def _finish(self) -> None:
        f, self._f = self._f, None
        if f is None:
            return
        f.close()
        os.replace(self._tmp, self._final)
        self.written.append(self._final)

    def close(self) -> None:
        self._finish()


class TrackedVideoWriter(AnnotatedVideoWriter):
    """The annotated video with each box's track id and a short trail of each track's recent centres."""

    def __init__(self, root: Path, fps: Mapping[str, float], codec: Any, caption: str | None = None) -> None:
        super().__init__(root, fps, codec, caption)
        self._trails: dict[int, deque[tuple[int, int]]] = {}
        self._last_seen: dict[int, int] = {}
        self._trail_source: str | None = None
        self._n = 0

    def draw(self, image: np.ndarray, result: ImageResult) -> np.ndarray:
        if not isinstance(result, TrackedResult):
            return super().draw(image, result)
        if result.source != self._trail_source or result.restart:
            self._trails, self._last_seen, self._trail_source = {}, {}, result.source
        self._n += 1
        for det, track_id in result.tracked():
            x1, y1, x2, y2 = det.xyxy
            centre = (int((x1 + x2) / 2), int((y1 + y2) / 2))
            self._trails.setdefault(track_id, deque(maxlen=TRAIL)).append(centre)
            self._last_seen[track_id] = self._n
        for track_id in [t for t, n in self._last_seen.items() if self._n - n >= TRAIL]:
            del self._trails[track_id], self._last_seen[track_id]
        trails = [(t, list(p)) for t, p in self._trails.items()]
        return draw_detections(image, result.detections, self.caption, track_ids(result), trails)


class TrackingSink(Sink):
    """Gives each result its track ids (in frame order: one thread at a time), counts it in the
    `book`, then hands it to the `inner` sinks; at close, after them, writes tracks.csv (when `csv_path`
    is set), so an interrupted run's tracks.csv, MOT files and video hold the same frames."""

    def __init__(
        self, tracker: RunTracker, inner: Iterable[Sink], book: TrackBook, csv_path: Path | None = None
    ) -> None:
        self.tracker = tracker
        self.inner = list(inner)
        self.book = book
        self.csv_path = csv_path
        self.written: list[Path] = []

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        tracked = self.tracker.assign(result, image)
        self.book.add(tracked)
        for sink in self.inner:
            sink.write(tracked, rel_path, image)

    def failures(self) -> list[Failure]:
        return [f for sink in self.inner for f in sink.failures()]

    def close(self) -> None:
        try:
            close_all(self.inner)
        finally:
            if self.csv_path is not None:
                self.written.append(self.book.write_csv(self.csv_path))


def tracked_boxes(result: ImageResult) -> list[tuple[Detection, int]]:
    """The boxes of a result that a track holds (none for an untracked result)."""
    return result.tracked() if isinstance(result, TrackedResult) else []
