"""Model registry and loading: names and aliases, where weights live, and a `Detector` over ultralytics.

Official names resolve to ultralytics' released weights, downloaded once into a per-user cache folder.
Paths (.pt, .yaml, .onnx, exported folders) are used as given. ultralytics is imported lazily.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from detect_cli.errors import BadOptionError, ModelError
from detect_cli.results import RANDOM_WEIGHTS, Detection, Speed
from detect_cli.sources import ascii_int

if TYPE_CHECKING:
    import numpy as np
from detect_cli.models.registry import (
    Family,
    Design,
    COCO_VAL_SOURCE,
    ModelSpec,
    REGISTRY,
    DEFAULT_MODEL,
    PUBLISHED_SIZE,
    family_of,
    MODEL_SUFFIXES,
    get_spec,
    cache_dir,
    weights_path,
    coco_names,
    is_coco80,
    catalog,
)  # noqa: F401
from detect_cli.models.refs import (
    ModelRef,
    weights_caption,
    _guess_family,
    resolve,
    _check_model_path,
    stand_in,
    official_config,
)  # noqa: F401
from detect_cli.models.device import cuda_driver_present, select_device  # noqa: F401
from detect_cli.models.ultralytics_import import quiet_stdout, import_ultralytics  # noqa: F401
from detect_cli.models.weights import fetch_weights, WeightsUnavailableError, _unavailable  # noqa: F401
from detect_cli.models.detector import (
    PredictOptions,
    Detector,
    class_tokens,
    resolve_classes,
    has_one2one_head,
)  # noqa: F401
