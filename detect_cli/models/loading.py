"""Loading a model: weights fetched once, files checked before ultralytics reads them, ultralytics' own
lines held back until the load succeeds; any failure is one ModelError naming the file.
"""

from __future__ import annotations

import contextlib
import logging
import stat
import sys
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from detect_cli.errors import ModelError
from detect_cli.models.detector import Detector, PredictOptions
from detect_cli.models.refs import ModelRef, official_config
from detect_cli.models.registry import Family, coco_names
from detect_cli.models.ultralytics_import import import_ultralytics, quiet_stdout
from detect_cli.models.weights import fetch_weights


def _loaded_family(model: Any) -> Family | None:
    """The family of a loaded PyTorch model; None for exported formats, whose graph does not say."""
    import torch

    net = getattr(model, "model", None)
    if not isinstance(net, torch.nn.Module):
        return None
    return "rtdetr" if type(net).__name__.startswith("RTDETR") else "yolo"


@contextlib.contextmanager
def _scale_said() -> Iterator[None]:
    """ultralytics reads a config's scale from a YOLO file name only (`yolo11n.yaml`: n); for any other
    (`rtdetr-l.yaml`) it warns 'no model scale passed. Assuming scale=...' and takes the first entry of
    `scales`. A config with one scale leaves nothing to assume: while a model is built from a config,
    that scale is passed with it, so the same network is built and nothing is said about it."""
    from ultralytics.engine import model as engine

    read = getattr(engine, "yaml_model_load", None)
    if read is None:  # another ultralytics: built as it builds them
        yield
        return

    def with_scale(path: Any) -> dict[str, Any]:
        config: dict[str, Any] = read(path)
        scales = config.get("scales") or {}
        if not config.get("scale") and len(scales) == 1:
            config["scale"] = next(iter(scales))
        return config

    engine.yaml_model_load = with_scale
    try:
        yield
    finally:
        engine.yaml_model_load = read


def _ultralytics_model(location: str, family: Family) -> Any:
    import_ultralytics()
    import torch
    from ultralytics import RTDETR, YOLO

    cls = RTDETR if family == "rtdetr" else YOLO
    config = location.endswith((".yaml", ".yml"))
    if config:
        torch.manual_seed(0)  # untrained models are random; a fixed seed makes runs repeatable
    with quiet_stdout(), _scale_said() if config else contextlib.nullcontext():
        model = cls(location)
    # A .pt whose name did not tell its family: check what was loaded and switch if needed.
    loaded = _loaded_family(model)
    if location.endswith(".pt") and loaded:
        if loaded != family:
            with quiet_stdout():
                model = (RTDETR if loaded == "rtdetr" else YOLO)(location)
    return model


@contextlib.contextmanager
def _held_output() -> Iterator[None]:
    """ultralytics' own lines while a model loads (its logger, prints, Python warnings), held back: said
    once the model has loaded, dropped when it fails, where the one `error:` line says what is wrong
    (a cut .pt otherwise adds its 'Recommended fixes', a broken export 'Loading … for OpenVINO')."""
    import io

    from ultralytics.utils import LOGGER

    records: list[logging.LogRecord] = []

    class Hold(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handlers, propagate = LOGGER.handlers[:], LOGGER.propagate
    printed = io.StringIO()
    LOGGER.handlers, LOGGER.propagate = [Hold()], False
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            contextlib.redirect_stdout(printed),
            contextlib.redirect_stderr(printed),  # where `quiet_stdout` sends prints meanwhile
        ):
            warnings.simplefilter("default")
            yield
    finally:
        LOGGER.handlers, LOGGER.propagate = handlers, propagate
    sys.stderr.write(printed.getvalue())  # reached only when the load succeeded
    for record in records:
        LOGGER.handle(record)
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _reason(error: BaseException) -> str:
    """What an exception from a model load says, on one line, without ultralytics' decorations (the
    'ERROR ❌' prefix, its 'Recommended fixes' and 'Verify YAML' advice)."""
    lines = []
    for line in str(error).splitlines():
        line = line.strip().removeprefix("ERROR").strip().lstrip("❌️").strip()
        if line and not line.startswith(("Recommended fixes", "Verify YAML")):
            lines.append(line)
    text = " ".join(lines) or type(error).__name__
    if len(text) <= 300:
        return text
    end = text.rfind(". ", 0, 300)  # the sentences that fit; torch's own go on for 500 characters
    return text[: end + 1] + " …" if end > 100 else text[:299] + "…"


def openvino_xmls(path: Path) -> list[Path]:
    """The OpenVINO IR files `path` names: itself (an .xml), or a folder's, by name."""
    return [path] if path.suffix == ".xml" else sorted(path.glob("*.xml")) if path.is_dir() else []


def check_model_files(location: str) -> None:
    """What can be told about a model file before anything reads it, said as one line: a model
    config that is not YAML (or has no network), an OpenVINO export whose .xml is not XML or whose
    .bin is missing, or whose files are not regular files (a FIFO would hang the read)."""
    path = Path(location)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        _check_config(path)
    for xml in openvino_xmls(path):
        _check_openvino_xml(xml)


def _not_regular(path: Path) -> bool:
    """`path` exists (or is a dangling link) and is not a regular file; stat only: nothing is opened."""
    try:
        return not stat.S_ISREG(path.stat().st_mode)
    except FileNotFoundError:
        return path.is_symlink()
    except OSError:
        return True


def _check_config(path: Path) -> None:
    import yaml

    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"cannot read model config {path}: {e}") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or _reason(e)
        raise ModelError(f"model config {path} is not valid YAML: {problem}{where}") from e
    if not isinstance(config, dict) or not {"backbone", "head"} <= config.keys():
        raise ModelError(
            f"model config {path} is not an ultralytics model config (it needs 'backbone' and 'head')"
        )


def _check_openvino_xml(xml: Path) -> None:
    from xml.etree import ElementTree

    for part in (xml, xml.parent / "metadata.yaml"):
        if _not_regular(part):
            raise ModelError(
                f"OpenVINO model file {part} is not a regular file (a FIFO, a device, a broken link)"
            )
    try:
        ElementTree.parse(xml)
    except ElementTree.ParseError as e:
        raise ModelError(f"OpenVINO model file {xml} is damaged (not valid XML: {e}); export it again") from e
    except OSError as e:
        raise ModelError(f"cannot read OpenVINO model file {xml}: {e.strerror or e}") from e
    weights = xml.with_suffix(".bin")
    if not weights.is_file() or weights.stat().st_size == 0:
        raise ModelError(f"OpenVINO model {xml} has no weights ({weights.name} is missing or empty)")


def load(ref: ModelRef, options: PredictOptions) -> Detector:
    """Load weights (downloading official ones once) and return a ready Detector.

    A file that cannot be loaded is one ModelError naming it and saying why; ultralytics' own lines
    about it are not shown (`_held_output`)."""
    location = str(fetch_weights(ref)) if ref.official else ref.location
    check_model_files(location)
    try:
        import_ultralytics()
        with _held_output():
            model = _ultralytics_model(location, ref.family)
            if official_config(ref):  # built untrained: classes named "0" … "79"
                model.model.names = coco_names()
            names = dict(model.names)  # an export (.onnx, OpenVINO) is opened here, on first use
    except FileNotFoundError as e:
        raise ModelError(f"model file not found: {location}") from e
    except Exception as e:  # torch/pickle/yaml/onnxruntime/openvino each raise their own types
        raise ModelError(
            f"cannot load model {location}: {_reason(e)} (a damaged file, or not an ultralytics "
            "detection model)"
        ) from e
    ref = replace(ref, family=_loaded_family(model) or ref.family)
    if getattr(model, "task", "detect") != "detect":
        raise ModelError(f"{location} is a '{model.task}' model; detect needs an object detection model")
    if not names:
        raise ModelError(f"model {location} has no class names; detect needs an object detection model")
    return Detector(ref, model, options)
