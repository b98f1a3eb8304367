"""Models: the official ones (`registry`), what `--model` names (`refs`), `--device` (`device`), weights
(`weights`), importing ultralytics (`ultralytics_import`), loading (`loading`) and the `Detector`
(`detector`). Official names resolve to ultralytics' released weights, downloaded once into a per-user
cache folder; paths are used as given; ultralytics is imported lazily.

Other layers import from here; the modules of the package import each other directly.
"""

from detect_cli.models.caveats import option_warnings, warn_about_options
from detect_cli.models.detector import (
    Detector,
    PredictOptions,
    class_tokens,
    has_one2one_head,
    resolve_classes,
)
from detect_cli.models.device import select_device
from detect_cli.models.loading import check_model_files, load, openvino_xmls
from detect_cli.models.refs import ModelRef, official_config, resolve, stand_in, weights_caption
from detect_cli.models.registry import (
    COCO_VAL_SOURCE,
    PUBLISHED_SIZE,
    REGISTRY,
    Family,
    cache_dir,
    catalog,
    coco_names,
    family_of,
    get_spec,
    is_coco80,
    weights_path,
)
from detect_cli.models.ultralytics_import import import_ultralytics, no_openvino_telemetry, quiet_stdout
from detect_cli.models.weights import WeightsUnavailableError, fetch_weights

__all__ = [
    "COCO_VAL_SOURCE",
    "PUBLISHED_SIZE",
    "REGISTRY",
    "Detector",
    "Family",
    "ModelRef",
    "PredictOptions",
    "WeightsUnavailableError",
    "cache_dir",
    "catalog",
    "check_model_files",
    "class_tokens",
    "coco_names",
    "family_of",
    "fetch_weights",
    "get_spec",
    "has_one2one_head",
    "import_ultralytics",
    "is_coco80",
    "load",
    "no_openvino_telemetry",
    "official_config",
    "openvino_xmls",
    "option_warnings",
    "quiet_stdout",
    "resolve",
    "resolve_classes",
    "select_device",
    "stand_in",
    "warn_about_options",
    "weights_caption",
    "weights_path",
]
