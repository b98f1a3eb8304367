"""`detect compare VIDEO --track`: every model's boxes tracked with the same tracker and settings on the
same decoded frames, each model's tracks written as MOTChallenge files (tracks/<model>/<video>.txt), and
per model the label-free stability figures (tracks.py) and, with MOTChallenge ground truth
(`--mot-gt gt.txt`), MOTA, IDF1 and HOTA from TrackEval, the HOTA authors' own code.

Ground truth is read as MOTChallenge's gt.txt: `frame,id,x,y,w,h,consider,class,visibility` (1-based
frames); rows whose `consider` flag is 0 are left out, as MOTChallenge's evaluation leaves them out. Every
tracked box is scored, whatever its class: track only the classes the ground truth labels (`--classes
person` for pedestrians). Only the frames the run processed are scored (every --vid-stride-th, up to
--max-frames).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from detect_cli.compare.results import ModelTracking, MotMetrics, TrackingRun
from detect_cli.errors import BadOptionError, OutputError
from detect_cli.pipeline import Frame
from detect_cli.results import ImageResult
from detect_cli.sources import VideoInput
from detect_cli.tracking import RunTracker, TrackerConfig
from detect_cli.tracks import MotWriter, TrackBook

if TYPE_CHECKING:
    import numpy as np

TRACKS_FOLDER = "tracks"


def _safe(label: str) -> str:
    """A model's label as a folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "model"


@dataclass(frozen=True)
class MotTable:
    """Boxes of a MOTChallenge file by 1-based frame: ids and (x, y, w, h) rows."""

    frames: Mapping[int, tuple[np.ndarray, np.ndarray]]
    ids: int  # distinct ids


def read_mot(path: Path, ground_truth: bool = False) -> MotTable:
    """A MOTChallenge file (results: `frame,id,x,y,w,h,conf,…`; ground truth: `…,consider,class,vis`),
    its ids renumbered 0… as TrackEval wants them. Raises BadOptionError for a file that is not one."""
    import numpy as np

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BadOptionError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from e
    rows: dict[int, list[tuple[int, list[float]]]] = {}
    ids: dict[int, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.replace(" ", ",").split(",") if c.strip()]
        try:
            values = [float(c) for c in cells]
        except ValueError:
            values = []
        if len(values) < 6:
            raise BadOptionError(
                f"{path} line {n} is not MOTChallenge's frame,id,x,y,w,h,…: {line.strip()[:60]!r}"
            )
        if ground_truth and len(values) >= 7 and values[6] == 0:
            continue  # marked "do not consider"
        frame, own = int(values[0]), int(values[1])
        ids.setdefault(own, len(ids))
        rows.setdefault(frame, []).append((ids[own], values[2:6]))
    frames = {
        f: (np.array([i for i, _ in r], int), np.array([b for _, b in r], float).reshape(-1, 4))
        for f, r in rows.items()
    }
    return MotTable(frames, len(ids))


def mot_metrics(gt: MotTable, tracks: MotTable, frames: Sequence[int]) -> MotMetrics:
    """MOTA, IDF1 and HOTA (and what they are made of) of `tracks` against `gt` over `frames` (1-based),
    computed by TrackEval's CLEAR, Identity and HOTA metrics on its own box IoU."""
    import numpy as np
    from trackeval.datasets._base_dataset import _BaseDataset
    from trackeval.metrics import CLEAR, HOTA, Identity

    empty = (np.zeros(0, int), np.zeros((0, 4)))
    gt_ids, tracker_ids, similarity = [], [], []
    for f in frames:
        g_ids, g_boxes = gt.frames.get(f, empty)
        t_ids, t_boxes = tracks.frames.get(f, empty)
        gt_ids.append(g_ids)
        tracker_ids.append(t_ids)
        similarity.append(_BaseDataset._calculate_box_ious(g_boxes, t_boxes, box_format="xywh"))
    data = {
        "num_timesteps": len(frames),
        "num_gt_ids": gt.ids,
        "num_tracker_ids": tracks.ids,
        "num_gt_dets": int(sum(len(i) for i in gt_ids)),
        "num_tracker_dets": int(sum(len(i) for i in tracker_ids)),
        "gt_ids": gt_ids,
        "tracker_ids": tracker_ids,
        "similarity_scores": similarity,
    }
    quiet = {"PRINT_CONFIG": False}
    hota = HOTA(quiet).eval_sequence(data)
    clear = CLEAR({**quiet, "THRESHOLD": 0.5}).eval_sequence(data)
    identity = Identity({**quiet, "THRESHOLD": 0.5}).eval_sequence(data)
    return MotMetrics(
        hota=float(np.mean(hota["HOTA"])),
        deta=float(np.mean(hota["DetA"])),
        assa=float(np.mean(hota["AssA"])),
        mota=float(clear["MOTA"]),
        motp=float(clear["MOTP"]),
        idf1=float(identity["IDF1"]),
        id_switches=int(clear["IDSW"]),
        gt_boxes=data["num_gt_dets"],
        gt_ids=gt.ids,
        frames=len(frames),
    )


def planned_files(out: Path, labels: Sequence[str], videos: Sequence[VideoInput]) -> Iterator[Path]:
    """The MOT files a tracked comparison may write (for the check that none of them is an input)."""
    for label in labels:
        for item in videos:
            yield MotWriter.target(out / TRACKS_FOLDER / _safe(label), item.rel_path)


class CompareTracking:
    """Given each frame and the models' results (`track`, in compare's `on_image`): tracks each model's
    boxes with its own tracker (same settings), counts them, writes its MOT file, and hands back the
    tracked results (for the side-by-side pictures and the detections files)."""

    def __init__(self, config: TrackerConfig, labels: Sequence[str], out: Path) -> None:
        self.config = config
        self.labels = list(labels)
        self.out = out
        self.trackers = [RunTracker(config) for _ in labels]
        self.books = [TrackBook() for _ in labels]
        self.writers = [MotWriter(out / TRACKS_FOLDER / _safe(label)) for label in labels]
        self.frames: list[int] = []  # 1-based source frames processed, for scoring against ground truth

    def restart_at(self, source: str, frame: int) -> None:
        for t in self.trackers:
            t.restart_at(source, frame)

    def track(self, frame: Frame, results: Sequence[ImageResult]) -> list[ImageResult]:
        """Each model's result for `frame`, with its boxes' track ids (in model order)."""
        if frame.frame is not None and frame.image is not None:
            self.frames.append(frame.frame + 1)
        out = []
        for tracker, book, writer, result in zip(
            self.trackers, self.books, self.writers, results, strict=True
        ):
            tracked = tracker.assign(result, frame.image)
            book.add(tracked)
            writer.write(tracked, frame.rel_path, frame.image)
            out.append(tracked)
        return out

    def close(self) -> None:
        errors = []
        for w in self.writers:
            try:
                w.close()
            except OSError as e:
                errors.append(e)
        if errors:
            raise OutputError(f"could not finish the MOT files: {errors[0]}")

    def result(self, fps: Mapping[str, float], gt: Path | None = None) -> TrackingRun:
        """Each model's figures; with `gt`, scored against it (one video)."""
        truth = read_mot(gt, ground_truth=True) if gt else None
        notes = []
        if truth is not None and not any(f in truth.frames for f in self.frames):
            notes.append(
                f"{gt} has no box on the frames compared ({len(self.frames)} frames): not this video's "
                "ground truth? The tracks are not scored"
            )
            truth = None
        models = []
        for label, book, writer in zip(self.labels, self.books, self.writers, strict=True):
            files = tuple(p.relative_to(self.out).as_posix() for p in writer.written)
            metrics = None
            if truth is not None and writer.written:
                metrics = mot_metrics(truth, read_mot(writer.written[0]), self.frames)
            models.append(ModelTracking(label, book.stability(fps), metrics, files))
        return TrackingRun(
            tracker=self.config.kind,
            settings=dict(self.config.settings),
            settings_from=self.config.origin,
            models=tuple(models),
            ground_truth=str(gt) if gt else None,
            notes=tuple(notes),
        )
