"""`--track` and `--tracker`: identities across video frames (`detect video`, `detect compare` on a video).

No `from __future__ import annotations` in the cli package: Typer reads these annotations at run time.
"""

import dataclasses
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from detect_cli.tracking import TrackerConfig

Track = Annotated[
    bool,
    typer.Option(
        "--track",
        help="Follow objects across frames: each box gets a track id (frames.jsonl), the video shows ids "
        "and trails, tracks.csv lists the tracks.",
    ),
]
Tracker = Annotated[
    str,
    typer.Option(
        "--tracker",
        metavar="NAME|YAML",
        help="With --track: bytetrack or botsort (ultralytics' trackers and default settings), or a YAML "
        "of tracker settings as `yolo track tracker=` takes one (tracker_type, track_buffer, …).",
    ),
]


@dataclasses.dataclass(frozen=True)
class TrackArgs:
    """Tracking options."""

    track: Track = False
    tracker: Tracker = "bytetrack"

    def config(self) -> "TrackerConfig | None":
        """The tracker and its settings when --track is on (BadOptionError for bad ones), else None;
        --tracker without --track is refused, since it would do nothing."""
        from detect_cli.errors import BadOptionError
        from detect_cli.tracking import DEFAULT_TRACKER, tracker_config

        if not self.track:
            if self.tracker != DEFAULT_TRACKER:
                raise BadOptionError("--tracker chooses the tracker of --track: add --track")
            return None
        return tracker_config(self.tracker)
