"""Output: sinks fed one result at a time (`sinks`: the record, results.jsonl, last), the per-input files
(`labels`, `annotated`, `outputs`), the tables built from the record (`tables`, with COCO ids from
`ids`), video files (`video_file`), atomic writes (`atomic`), the record's format (`jsonl`), the list of
what a run wrote (`filelist`). Output names are given by discovery (`sources.names`).

Other layers import from here; the modules of the package import each other directly.
"""

from detect_cli.writers.annotated import AnnotatedImageWriter, AnnotatedVideoWriter
from detect_cli.writers.atomic import atomic_write_bytes, open_new
from detect_cli.writers.filelist import FileList, remove_listed
from detect_cli.writers.ids import FIRST_FREE_ID
from detect_cli.writers.jsonl import (
    FRAMES_JSONL,
    RESULTS_JSONL,
    iter_jsonl,
    json_text,
    jsonl_line,
    read_jsonl,
    repair_tail,
)
from detect_cli.writers.labels import YoloTxtWriter
from detect_cli.writers.outputs import open_sinks, output_paths, output_sinks
from detect_cli.writers.sinks import RUN_FAULTS, Failure, JsonlWriter, Sink, SinkGroup, close_all
from detect_cli.writers.tables import TABLES, CocoWriter, CsvWriter, write_tables
from detect_cli.writers.video_file import Codec, open_video_file

__all__ = [
    "FIRST_FREE_ID",
    "FRAMES_JSONL",
    "RESULTS_JSONL",
    "RUN_FAULTS",
    "TABLES",
    "AnnotatedImageWriter",
    "AnnotatedVideoWriter",
    "CocoWriter",
    "Codec",
    "CsvWriter",
    "Failure",
    "FileList",
    "JsonlWriter",
    "Sink",
    "SinkGroup",
    "YoloTxtWriter",
    "atomic_write_bytes",
    "close_all",
    "iter_jsonl",
    "json_text",
    "jsonl_line",
    "open_new",
    "open_sinks",
    "open_video_file",
    "output_paths",
    "output_sinks",
    "read_jsonl",
    "remove_listed",
    "repair_tail",
    "write_tables",
]
