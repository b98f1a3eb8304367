"""`detect explain`: where RT-DETR looked for each detection (`rtdetr`: decoder sampling, AIFI encoder
attention), beside a YOLO activation map (`eigencam`); what it finds (`results`), the hooks it runs
with (`hooks`), its picture (`draw`), its run (`run`).

Other layers import from here; the modules of the package import each other directly.
"""

from detect_cli.explain.eigencam import eigencam, yolo_activation
from detect_cli.explain.hooks import TORCH_ONLY, running_net
from detect_cli.explain.results import ImageExplanation
from detect_cli.explain.rtdetr import EncoderCapture, attention_spread, capture_rtdetr, explain_rtdetr
from detect_cli.explain.run import (
    EXPLAIN_JSONL,
    ExplainJob,
    explain_image,
    explain_images,
    picture_path,
    run_explain,
)

__all__ = [
    "EXPLAIN_JSONL",
    "TORCH_ONLY",
    "EncoderCapture",
    "ExplainJob",
    "ImageExplanation",
    "attention_spread",
    "capture_rtdetr",
    "eigencam",
    "explain_image",
    "explain_images",
    "explain_rtdetr",
    "picture_path",
    "run_explain",
    "running_net",
    "yolo_activation",
]
