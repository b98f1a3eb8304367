"""Output sinks: results.jsonl (frames.jsonl for videos), CSV, YOLO labels, COCO results, annotated
images and annotated videos.

Each sink is a context manager fed one result at a time, so nothing accumulates in memory. Every file
but results.jsonl is written to a temporary name first and renamed into place, so a half-written file
never exists under its final name. results.jsonl is appended and flushed per input, after that input's
other outputs are written: it is the run's commit log (see resume.py). The tables (CSV, COCO) are built
from results.jsonl when a run ends, so they always hold exactly what it records, resumed runs included.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from detect_cli.errors import OutputError
from detect_cli.models import is_coco80
from detect_cli.render import draw_detections
from detect_cli.results import BadRecord, ImageResult, check_record
from detect_cli.rundir import open_own

if TYPE_CHECKING:
    import numpy as np
from detect_cli.writers.video_file import (
    VideoLibrary,
    Codec,
    VideoFile,
    _OpenCvVideo,
    _PyAvVideo,
    open_video_file,
)  # noqa: F401
from detect_cli.writers.names import HasRelPath, Named, _fold, output_names, name_outputs, output_file  # noqa: F401
from detect_cli.writers.jsonl import (
    RESULTS_JSONL,
    FRAMES_JSONL,
    json_text,
    jsonl_line,
    repair_tail,
    iter_jsonl,
    read_jsonl,
)  # noqa: F401
from detect_cli.writers.atomic import atomic_write_bytes, open_new  # noqa: F401
from detect_cli.writers.ids import FIRST_FREE_ID, name_number, _id_key, ImageIds  # noqa: F401
from detect_cli.writers.sinks import (
    Failure,
    Sink,
    LineFile,
    WholeFile,
    JsonlWriter,
    RUN_FAULTS,
    run_fault,
    SinkGroup,
    close_all,
)  # noqa: F401
from detect_cli.writers.tables import (
    CSV_COLUMNS,
    CsvWriter,
    coco80_to_coco91,
    CocoWriter,
    TABLES,
    write_tables,
)  # noqa: F401
from detect_cli.writers.annotated import AnnotatedImageWriter, AnnotatedVideoWriter  # noqa: F401
from detect_cli.writers.labels import YoloTxtWriter  # noqa: F401
