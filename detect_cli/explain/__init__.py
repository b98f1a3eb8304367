"""`detect explain`: where RT-DETR looked for each detection, beside a YOLO activation map.

RT-DETR (torch backend only) is run once with forward hooks on
- the cross-attention (`MSDeformAttn`) of the decoder layer whose output gives the boxes: its input
  query and reference boxes, and the outputs of its `sampling_offsets` and `attention_weights`
  layers, from which the sampling locations and softmaxed weights follow by the module's own formula;
- the AIFI encoder's `nn.MultiheadAttention`: its attention weights, averaged over heads;
- the decoder head: its per-query scores, to know which query produced each kept box (the head keeps
  the top (query, class) pairs by score; the predictor then drops those at or below --conf).

YOLO gets EigenCAM: the first principal component of each neck output (the Detect head's inputs).
Hooks are removed in `finally` blocks, and what the model returns is not changed by them.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from detect_cli.backends import Plan, exported_kind, load_detector
from detect_cli.errors import BadOptionError, InputError, OutputError
from detect_cli.jobs.common import refuse_other_kind, warn_about_options
from detect_cli.models import Detector, ModelRef, PredictOptions
from detect_cli.render import draw_detections, draw_title
from detect_cli.results import RANDOM_WEIGHTS, Detection
from detect_cli.rundir import check_plan, planned_folder, run_folder
from detect_cli.signals import stop_on_signals
from detect_cli.sources import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_URL_TIMEOUT_S,
    ImageInput,
    discover_images,
    read_image,
)
from detect_cli.writers import RUN_FAULTS, JsonlWriter, atomic_write_bytes, name_outputs, output_file

if TYPE_CHECKING:
    import numpy as np
    import torch
from detect_cli.explain.results import (
    SamplingPoint,
    AttentionSpread,
    ExplainedDetection,
    YoloActivation,
    ImageExplanation,
)  # noqa: F401
from detect_cli.explain.hooks import TORCH_ONLY, running_net, hooked  # noqa: F401
from detect_cli.explain.rtdetr import (
    DecoderCapture,
    EncoderCapture,
    RTDETRCapture,
    _rtdetr_modules,
    sampling_locations,
    _kept_queries,
    capture_rtdetr,
    attention_heatmap,
    attention_spread,
    explain_rtdetr,
)  # noqa: F401
from detect_cli.explain.eigencam import eigencam, yolo_activation  # noqa: F401
from detect_cli.explain.draw import _overlay, _note, _sampling_panel, _encoder_panel, render_explanation  # noqa: F401


# --- results ----------------------------------------------------------------------------------------


# --- capture ----------------------------------------------------------------------------------------


# --- picture ----------------------------------------------------------------------------------------


# --- a run ------------------------------------------------------------------------------------------
