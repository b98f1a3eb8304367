"""`detect compare`: several detectors on the same inputs — speed, agreement, accuracy.

    results      what was measured, as frozen dataclasses (`Comparison` is report.json)
    agreement    the models' boxes matched pair by pair (through `detect_cli.geometry`)
    accuracy     scores against labels with pycocotools; labels reads them (YOLO data.yaml, COCO json)
    model_facts  each model's label, size and input rule in the report (`model_info`)
    job          what the command asks for (`CompareJob`) and gets back (`CompareRun`)
    inputs       images or videos (`source_kind`), checked and opened as one stream of frames
    loop         the comparison loop (`run_comparison`): every model on each frame, measured
    run          the command end to end (`run_compare`): sources, models, the loop, the report
    outputs      what is written as the run goes: detections, side-by-side pictures and videos
    report       presenting a `Comparison`: report.md/html/json from templates/ (Jinja2), with
                 report_tables, report_plots, report_summary (the first screen) and report_gallery

Modules point down the list in reverse: run uses all of them; report and outputs use results.
"""

from detect_cli.compare.job import CompareJob, CompareRun
from detect_cli.compare.loop import run_comparison
from detect_cli.compare.report import rich_tables, write_report
from detect_cli.compare.results import CompareSettings, Comparison
from detect_cli.compare.run import run_compare

__all__ = [
    "CompareJob",
    "CompareRun",
    "CompareSettings",
    "Comparison",
    "rich_tables",
    "run_compare",
    "run_comparison",
    "write_report",
]
