"""`--track` and `--tracker`: identities across video frames (`detect video`, `detect compare` on a video).

No `from __future__ import annotations` in the cli package: Typer reads these annotations at run time.
"""

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from detect_cli.tracking import TrackerConfig

TRACKING = "Tracking"  # the help panel of these options

Track = Annotated[
    bool,
    typer.Option(
        "--track",
        help="Follow objects across frames: track ids, trails, tracks.csv.",
        rich_help_panel=TRACKING,
    ),
]
Tracker = Annotated[
    str,
    typer.Option(
        "--tracker",
        metavar="NAME|YAML",
        help="bytetrack, botsort, or a YAML of tracker settings (as `yolo track` takes one).",
        rich_help_panel=TRACKING,
    ),
]

MotGt = Annotated[
    Path | None,
    typer.Option(
        "--mot-gt",
        exists=True,
        dir_okay=False,
        metavar="GT.TXT",
        help="One video's MOTChallenge ground truth: MOTA, IDF1, HOTA per model.",
        rich_help_panel=TRACKING,
        show_default=False,
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
