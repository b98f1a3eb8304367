"""Identities across frames: ultralytics' own trackers (ByteTrack, BoT-SORT) run over a run's detections.

The trackers are ultralytics' (`ultralytics/trackers`, the ones `yolo track` runs), with their settings as
ultralytics names them: its own `bytetrack.yaml`/`botsort.yaml`, or a YAML of the user's read the way
`yolo track tracker=my.yaml` reads one. `RunTracker` keeps one tracker per uninterrupted piece of a source
(a new video, or a live stream reopened after it stopped, starts fresh identities) and hands back each
frame's result with the track id of every box (`TrackedResult`; None for a box no track holds: a
low-score box, or one seen for the first time after the first frame, which ByteTrack confirms only on its
second). Ids are numbered per source from 1 and never reused within it, reconnects included.

ultralytics' tracker code imports torch (through `ultralytics.utils`), so a tracked run imports it too,
also on an ONNX/OpenVINO export; an untracked run does not.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detect_cli.errors import BadOptionError
from detect_cli.results import Detection, ImageResult

if TYPE_CHECKING:
    import numpy as np

TRACKERS = ("bytetrack", "botsort")
DEFAULT_TRACKER = "bytetrack"
RECONNECTED = "stream reconnected: the tracks restart with new ids"


@dataclass(frozen=True)
class TrackerConfig:
    """Which tracker, and its settings as ultralytics names them (every key of its default YAML)."""

    kind: str
    settings: Mapping[str, Any]
    origin: str  # "ultralytics' bytetrack.yaml" or the user's file

    def to_dict(self) -> dict[str, Any]:
        return {"tracker": self.kind, "settings": dict(self.settings), "from": self.origin}


def _defaults_file(kind: str) -> Path:
    """ultralytics' own cfg/trackers/<kind>.yaml, found without importing ultralytics (or torch)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        raise BadOptionError("--track needs ultralytics, which is not installed")
    return Path(next(iter(spec.submodule_search_locations)), "cfg", "trackers", f"{kind}.yaml")


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise BadOptionError(f"cannot read --tracker {path}: {getattr(e, 'strerror', None) or e}") from e
    except yaml.YAMLError as e:
        raise BadOptionError(f"--tracker {path} is not valid YAML: {str(e).splitlines()[0]}") from e
    if not isinstance(data, dict):
        raise BadOptionError(f"--tracker {path} holds no settings (a YAML mapping, as bytetrack.yaml)")
    return data


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return value is None or isinstance(value, str)


def tracker_config(choice: str) -> TrackerConfig:
    """`--tracker`: `bytetrack` or `botsort` (ultralytics' defaults), or a YAML file of settings whose
    `tracker_type` says which, as ultralytics reads one. Keys it leaves out keep ultralytics' defaults;
    an unknown key, a value of the wrong type, or BoT-SORT's ReID (which needs an appearance model's
    weights) is refused (BadOptionError, exit 2)."""
    if choice.lower() in TRACKERS:
        kind = choice.lower()
        return TrackerConfig(kind, _read_yaml(_defaults_file(kind)), f"ultralytics' {kind}.yaml")
    path = Path(choice)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise BadOptionError(
            f"--tracker {choice}: use bytetrack, botsort, or a .yaml file of tracker settings"
        )
    if not path.is_file():
        raise BadOptionError(f"--tracker {choice}: no such file")
    given = _read_yaml(path)
    kind = str(given.get("tracker_type", "")).lower()
    if kind not in TRACKERS:
        raise BadOptionError(
            f"--tracker {choice}: tracker_type must be one of {', '.join(TRACKERS)} "
            f"(got {given.get('tracker_type')!r})"
        )
    settings = _read_yaml(_defaults_file(kind))
    unknown = sorted(set(given) - set(settings))
    if unknown:
        raise BadOptionError(
            f"--tracker {choice}: unknown {kind} setting(s) {', '.join(unknown)} "
            f"(known: {', '.join(k for k in settings if k != 'tracker_type')})"
        )
    for key, value in given.items():
        if not _same_kind(settings[key], value):
            raise BadOptionError(f"--tracker {choice}: {key} must be like {settings[key]!r}, not {value!r}")
    settings.update(given, tracker_type=kind)
    if settings.get("with_reid"):
        raise BadOptionError(
            f"--tracker {choice}: with_reid needs an appearance (ReID) model's weights, which detect does "
            "not load; set with_reid: false"
        )
    return TrackerConfig(kind, settings, str(path))


def _tracker_classes() -> dict[str, Any]:
    """ultralytics' tracker classes. Its matching module pip-installs `lap` at import time when it is
    missing; that must never happen in a run, so its absence is said instead."""
    try:
        import lap  # noqa: F401
    except ImportError as e:
        raise BadOptionError("--track needs the lap package (pip install lap); it is not installed") from e
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.trackers.byte_tracker import BYTETracker

    return {"bytetrack": BYTETracker, "botsort": BOTSORT}


class _Boxes:
    """The few things ultralytics' trackers read of a `Boxes` (NumPy): conf, cls, xyxy, xywh (centre),
    len() and boolean indexing."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        import numpy as np

        self.xyxy, self.conf, self.cls = xyxy, conf, cls
        wh = xyxy[:, 2:4] - xyxy[:, 0:2]
        self.xywh = np.concatenate([xyxy[:, 0:2] + wh / 2, wh], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: Any) -> _Boxes:
        return _Boxes(self.xyxy[index], self.conf[index], self.cls[index])

    @classmethod
    def of(cls, detections: Sequence[Detection]) -> _Boxes:
        import numpy as np

        xyxy = np.array([d.xyxy for d in detections], np.float32).reshape(-1, 4)
        conf = np.array([d.confidence for d in detections], np.float32)
        return cls(xyxy, conf, np.array([d.class_id for d in detections], np.float32))


class Tracker:
    """One ultralytics tracker over one uninterrupted sequence of frames; `update` gives each box's
    track id (the tracker's own numbering, from 1), or None where no confirmed track holds it."""

    def __init__(self, config: TrackerConfig) -> None:
        from ultralytics.utils import IterableSimpleNamespace

        args = IterableSimpleNamespace(**config.settings)
        self._tracker = _tracker_classes()[config.kind](args)

    def update(self, detections: Sequence[Detection], image: np.ndarray | None) -> list[int | None]:
        ids: list[int | None] = [None] * len(detections)
        rows = self._tracker.update(_Boxes.of(detections), image)
        for row in rows:  # [x1, y1, x2, y2, track_id, score, cls, idx]
            ids[int(row[-1])] = int(row[4])
        return ids


@dataclass(frozen=True, slots=True)
class TrackedResult(ImageResult):
    """A frame's result with the track id of each detection (in `detections` order; None: no track).
    `restart` says why the tracks start anew at this frame (a stream reconnected), when they do."""

    track_ids: tuple[int | None, ...] = ()
    restart: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = ImageResult.to_dict(self)  # (slots: no zero-argument super)
        for det, track_id in zip(d["detections"], self.track_ids, strict=False):
            det["track_id"] = track_id
        for det in d["detections"][len(self.track_ids) :]:  # detections dropped and replaced: none
            det["track_id"] = None
        if self.restart:
            d["tracks_restart"] = self.restart
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrackedResult:
        """The tracked result a record of a tracked run describes (a box recorded without a track id
        has none); BadRecord when it is not a record (`ImageResult.from_dict`)."""
        base = ImageResult.from_dict(d)
        fields = {f: getattr(base, f) for f in ImageResult.__dataclass_fields__}
        ids = tuple(
            None if x.get("track_id") is None else int(x["track_id"]) for x in d.get("detections", [])
        )
        return cls(**fields, track_ids=ids, restart=d.get("tracks_restart"))

    def tracked(self) -> list[tuple[Detection, int]]:
        """The detections a track holds, with its id."""
        return [(d, t) for d, t in zip(self.detections, self.track_ids, strict=False) if t is not None]


def track_ids(result: ImageResult) -> tuple[int | None, ...]:
    """The track id of each of `result`'s boxes, in order: None where no track holds the box, and for
    every box of an untracked result. Whatever draws or lists a frame's boxes reads the ids here."""
    n = len(result.detections)
    ids = result.track_ids[:n] if isinstance(result, TrackedResult) else ()
    return ids + (None,) * (n - len(ids))


@dataclass
class _SourceIds:
    """A source's numbering: the tracker's own ids mapped to ids unique in the source (a reconnect's new
    tracker numbers from 1 again; its ids follow on from the last one given)."""

    issued: int = 0
    mapping: dict[int, int] = field(default_factory=dict)

    def of(self, own: int | None) -> int | None:
        if own is None:
            return None
        if own not in self.mapping:
            self.issued += 1
            self.mapping[own] = self.issued
        return self.mapping[own]


class RunTracker:
    """Tracks the frames of a run in order, one source after another: a new source, or a frame that
    `restart_at` marked (the first after a reconnect), starts a fresh tracker. Frames that failed pass
    through untouched."""

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        _tracker_classes()  # fail now (no lap) rather than at the first frame
        self._source: str | None = None
        self._tracker: Tracker | None = None
        self._ids: dict[str, _SourceIds] = {}
        self._restarts: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def restart_at(self, source: str, frame: int) -> None:
        """Called by the decoder (in its thread) before it hands over the first frame after a reconnect."""
        with self._lock:
            self._restarts.add((source, frame))

    def assign(self, result: ImageResult, image: np.ndarray | None) -> ImageResult:
        """`result` with its boxes' track ids (a TrackedResult), once per frame and in order."""
        restart = None
        with self._lock:
            key = (result.source, result.frame if result.frame is not None else -1)
            if key in self._restarts:
                self._restarts.discard(key)
                restart = RECONNECTED
        if result.source != self._source or restart:
            self._source = result.source
            self._tracker = None
        if not result.ok:
            return result
        ids = self._ids.setdefault(result.source, _SourceIds())
        if self._tracker is None:
            self._tracker = Tracker(self.config)
            ids.mapping = {}  # the new tracker numbers from 1 again: its ids are new ones
        own = self._tracker.update(result.detections, image)
        fields = {f: getattr(result, f) for f in ImageResult.__dataclass_fields__}
        return TrackedResult(**fields, track_ids=tuple(ids.of(t) for t in own), restart=restart)
