"""What `--model` names, resolved to a `ModelRef` without loading anything: an official name, a path
(.pt, .yaml, .onnx, an exported folder, checked up front), or an official model's config as its
stand-in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from detect_cli.errors import ModelError
from detect_cli.models.registry import (
    DEFAULT_MODEL,
    MODEL_SUFFIXES,
    REGISTRY,
    Family,
    ModelSpec,
    get_spec,
    weights_path,
)
from detect_cli.results import RANDOM_WEIGHTS


@dataclass(frozen=True, slots=True)
class ModelRef:
    """What `--model` named, resolved: a display name, the family, and the file or config to load."""

    name: str
    family: Family
    location: str
    official: bool
    stand_in: bool = False  # an official model's config, run because its weights could not be fetched

    @property
    def untrained(self) -> bool:
        return self.location.endswith((".yaml", ".yml"))

    @property
    def spec(self) -> ModelSpec | None:
        """The registry entry of an official model (or of its config, `yolo26n.yaml`); None for others."""
        return get_spec(self.name) if self.official or self.stand_in or self.untrained else None


def weights_caption(ref: ModelRef) -> str | None:
    """What every picture a model with random weights (a config: `--offline-fallback`'s stand-in, or
    `-m x.yaml`) says in its title band, so that no one takes its boxes for detections; None for
    trained weights."""
    return f"{ref.name}: {RANDOM_WEIGHTS}, boxes are meaningless" if ref.untrained else None


def _guess_family(text: str, default: Family) -> Family:
    low = Path(text).name.lower()
    if "rtdetr" in low or "rt-detr" in low:
        return "rtdetr"
    if "yolo" in low:
        return "yolo"
    return default


def resolve(model: str | None, default_family: Family) -> ModelRef:
    """Turn a `--model` value (or None for the command's default) into a ModelRef; nothing is loaded."""
    model = model or DEFAULT_MODEL[default_family]
    spec = get_spec(model)
    path = Path(model).expanduser()
    if spec and not path.exists():
        return ModelRef(spec.name, spec.family, str(weights_path(spec)), official=True)
    if path.exists():
        _check_model_path(path)
        return ModelRef(path.stem, _guess_family(str(path), default_family), str(path), official=False)
    if path.suffix in (".yaml", ".yml") and os.sep not in model:  # configs ultralytics ships (rtdetr-l.yaml)
        return ModelRef(path.stem, _guess_family(model, default_family), model, official=False)
    if os.path.lexists(path):
        raise ModelError(f"model file {model} is a broken symlink")
    if path.suffix.lower() in MODEL_SUFFIXES or os.sep in model or model.endswith("_openvino_model"):
        raise ModelError(f"no such file or folder: {model} (the --model path)")
    known = ", ".join(s.name for s in REGISTRY)
    raise ModelError(
        f"unknown model '{model}': use one of {known}, or a path to a .pt, .yaml or exported model"
    )


def _check_model_path(path: Path) -> None:
    """A --model path that exists must be a non-empty file, or an exported model's folder."""
    import stat

    st = path.stat()
    if stat.S_ISDIR(st.st_mode):
        if not any(path.glob("*.xml")) and not any(path.glob("*.onnx")):
            raise ModelError(
                f"{path} is a folder without an exported model (an OpenVINO .xml or an .onnx); pass a .pt, "
                ".yaml or .onnx file, or a folder made by an export"
            )
    elif not stat.S_ISREG(st.st_mode):
        raise ModelError(f"{path} is not a regular file (a FIFO or device?); pass a model file")
    elif st.st_size == 0:
        raise ModelError(f"model file {path} is empty")


def stand_in(ref: ModelRef) -> ModelRef:
    """The untrained config of an official model, to run when its weights cannot be fetched
    (`--offline-fallback`): the same network with random weights."""
    spec = get_spec(ref.name)
    if spec is None:
        raise ModelError(f"{ref.name} is not an official model; it has no config to fall back to")
    return ModelRef(spec.name, spec.family, spec.config, official=False, stand_in=True)


def official_config(ref: ModelRef) -> bool:
    """Whether `ref` is the config of an official model (`--offline-fallback`'s stand-in, or
    `-m rtdetr-l.yaml` as ultralytics ships it): the same network untrained, whose classes are COCO's,
    though the config names them "0" … "79"."""
    spec = get_spec(ref.name)
    return spec is not None and (ref.stand_in or ref.location == spec.config)
