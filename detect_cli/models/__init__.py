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

Family = Literal["rtdetr", "yolo"]  # which ultralytics class loads it: RTDETR, or YOLO
Design = Literal["transformer", "cnn", "hybrid"]

COCO_VAL_SOURCE = "https://docs.ultralytics.com/models/ (COCO val2017, 640 px)"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """An official model: its weights file, the COCO val mAP50-95 its authors publish, its design (a
    transformer, a CNN, or a CNN with attention or an end-to-end head: a hybrid), and whether it runs
    without NMS (an end-to-end head: RT-DETR's decoder, YOLO26's one-to-one head)."""

    name: str
    family: Family
    weights: str
    published_map: float
    aliases: tuple[str, ...] = ()
    design: Design = "cnn"
    nms_free: bool = False

    @property
    def config(self) -> str:
        """The ultralytics model config that builds the same network untrained (`yolo26n.yaml`)."""
        return self.weights.removesuffix(".pt") + ".yaml"

    @property
    def ultralytics_class(self) -> str:
        return "RTDETR" if self.family == "rtdetr" else "YOLO"


# mAP50-95 on COCO val2017 at 640 px, as ultralytics publishes them:
# RT-DETR https://docs.ultralytics.com/models/rtdetr/, YOLO11 https://docs.ultralytics.com/models/yolo11/,
# YOLO12 https://docs.ultralytics.com/models/yolo12/ ("Detection Performance (COCO val2017)"),
# YOLO26 https://docs.ultralytics.com/models/yolo26/ and https://docs.ultralytics.com/tasks/detect/: the
# "mAPval 50-95(e2e)" column, the end-to-end (NMS-free) head that predict runs (40.9/48.6/53.1/55.0/57.5
# with NMS over the one-to-many head).
REGISTRY: tuple[ModelSpec, ...] = (
    ModelSpec("rtdetr-l", "rtdetr", "rtdetr-l.pt", 53.0, ("rtdetr",), "transformer", nms_free=True),
    ModelSpec("rtdetr-x", "rtdetr", "rtdetr-x.pt", 54.8, (), "transformer", nms_free=True),
    ModelSpec("yolo11n", "yolo", "yolo11n.pt", 39.5, ("yolo11", "yolo")),
    ModelSpec("yolo11s", "yolo", "yolo11s.pt", 47.0),
    ModelSpec("yolo11m", "yolo", "yolo11m.pt", 51.5),
    ModelSpec("yolo11l", "yolo", "yolo11l.pt", 53.4),
    ModelSpec("yolo11x", "yolo", "yolo11x.pt", 54.7),
    # YOLO26: a CNN with an end-to-end (one-to-one, NMS-free) head; YOLO12: a CNN with area attention.
    ModelSpec("yolo26n", "yolo", "yolo26n.pt", 40.1, ("yolo26",), "hybrid", nms_free=True),
    ModelSpec("yolo26s", "yolo", "yolo26s.pt", 47.8, (), "hybrid", nms_free=True),
    ModelSpec("yolo26m", "yolo", "yolo26m.pt", 52.5, (), "hybrid", nms_free=True),
    ModelSpec("yolo26l", "yolo", "yolo26l.pt", 54.4, (), "hybrid", nms_free=True),
    ModelSpec("yolo26x", "yolo", "yolo26x.pt", 56.9, (), "hybrid", nms_free=True),
    ModelSpec("yolo12n", "yolo", "yolo12n.pt", 40.6, ("yolo12",), "hybrid"),
    ModelSpec("yolo12s", "yolo", "yolo12s.pt", 48.0, (), "hybrid"),
    ModelSpec("yolo12m", "yolo", "yolo12m.pt", 52.5, (), "hybrid"),
    ModelSpec("yolo12l", "yolo", "yolo12l.pt", 53.7, (), "hybrid"),
    ModelSpec("yolo12x", "yolo", "yolo12x.pt", 55.2, (), "hybrid"),
)
DEFAULT_MODEL: dict[Family, str] = {"rtdetr": "rtdetr-l", "yolo": "yolo11n"}

# Parameters (M) and FLOPs (B, at 640 px) as the authors publish them, for placing a compared model among
# its family's sizes (compare's report): YOLO11 https://docs.ultralytics.com/models/yolo11/, YOLO12
# https://docs.ultralytics.com/models/yolo12/, YOLO26 https://docs.ultralytics.com/models/yolo26/ (the
# "params (M)" and "FLOPs (B)" columns); RT-DETR https://github.com/lyuwenyu/RT-DETR (RT-DETR-HGNetv2-L
# and -X, "#Params(M)" and "GFLOPs").
PUBLISHED_SIZE: dict[str, tuple[float, float]] = {
    "rtdetr-l": (32.0, 110.0),
    "rtdetr-x": (67.0, 234.0),
    "yolo11n": (2.6, 6.5),
    "yolo11s": (9.4, 21.5),
    "yolo11m": (20.1, 68.0),
    "yolo11l": (25.3, 86.9),
    "yolo11x": (56.9, 194.9),
    "yolo26n": (2.4, 5.4),
    "yolo26s": (9.5, 20.7),
    "yolo26m": (20.4, 68.2),
    "yolo26l": (24.8, 86.4),
    "yolo26x": (55.7, 193.9),
    "yolo12n": (2.6, 6.5),
    "yolo12s": (9.3, 21.4),
    "yolo12m": (20.2, 67.5),
    "yolo12l": (26.4, 88.9),
    "yolo12x": (59.1, 199.0),
}


def family_of(name: str) -> str:
    """The published series an official model belongs to: "rtdetr", "yolo11", "yolo26", "yolo12"."""
    return "rtdetr" if name.startswith("rtdetr") else name[:-1]


MODEL_SUFFIXES = (".pt", ".yaml", ".yml", ".onnx", ".engine", ".torchscript")


def get_spec(name: str) -> ModelSpec | None:
    key = name.lower().removesuffix(".pt")
    return next((s for s in REGISTRY if key == s.name or key in s.aliases), None)


def cache_dir() -> Path:
    """Per-user cache: $DETECT_CACHE_DIR, else $XDG_CACHE_HOME/detect-cli, else ~/.cache/detect-cli."""
    if env := os.environ.get("DETECT_CACHE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "detect-cli"


def weights_path(spec: ModelSpec) -> Path:
    return cache_dir() / "weights" / spec.weights


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


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """ultralytics logs to stdout; keep stdout for results (`--json`) by sending its chatter to stderr."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def import_ultralytics() -> Any:
    """Import ultralytics once, offline-safe: no DNS probe, telemetry or pip auto-installs unless asked.

    YOLO_OFFLINE only stops those side trips; official weights still download (see `fetch_weights`).
    Setting YOLO_OFFLINE=0 in the environment restores ultralytics' defaults.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    with quiet_stdout():  # the logger binds sys.stdout when first imported
        import ultralytics
        from ultralytics.utils import LOGGER
    # Imported earlier without the redirect (another entry point), its handler would still write to
    # stdout, which belongs to `--json` results: move it to stderr.
    for handler in LOGGER.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.__stdout__):
            handler.setStream(sys.stderr)
    return ultralytics


def fetch_weights(ref: ModelRef) -> Path:
    """Make sure an official model's weights are in the cache, downloading them on first use."""
    target = Path(ref.location)
    if target.is_file():
        return target
    import_ultralytics()
    from ultralytics.utils.downloads import attempt_download_asset

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with quiet_stdout():
            attempt_download_asset(target)
    except Exception as e:  # any failure here means the same thing to the user
        reason = str(e).replace("❌", "").strip().splitlines()[0] if str(e) else type(e).__name__
        raise WeightsUnavailableError(ref, reason) from e
    if not target.is_file():
        raise WeightsUnavailableError(ref, "download produced no file")
    return target


class WeightsUnavailableError(ModelError):
    """An official model's weights are not in the cache and cannot be downloaded; `reason` says why."""

    def __init__(self, ref: ModelRef, reason: str) -> None:
        super().__init__(_unavailable(ref, reason))
        self.reason = reason


def stand_in(ref: ModelRef) -> ModelRef:
    """The untrained config of an official model, to run when its weights cannot be fetched
    (`--offline-fallback`): the same network with random weights."""
    spec = get_spec(ref.name)
    if spec is None:
        raise ModelError(f"{ref.name} is not an official model; it has no config to fall back to")
    return ModelRef(spec.name, spec.family, spec.config, official=False, stand_in=True)


def _unavailable(ref: ModelRef, reason: str) -> str:
    return (
        f"cannot get weights for {ref.name} ({reason}). Put them at {ref.location}, "
        f"or pass a local .pt with --model, or a .yaml (e.g. {ref.name}.yaml) for an untrained model"
    )


def cuda_driver_present() -> bool:
    """Whether NVIDIA's driver library loads. Without it torch sees no GPU either, so `--device auto`
    is the CPU; with it, torch is asked (it may still be a CPU build, or see no device). Linux only:
    elsewhere the driver has other names, and torch is always asked."""
    import ctypes

    if not sys.platform.startswith("linux"):
        return True
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def select_device(device: str) -> str:
    """'auto' becomes cuda:0 when CUDA is there, else cpu; an unavailable device is refused up front."""
    dev = device.strip().lower()
    if dev == "cpu" or (dev == "auto" and not cuda_driver_present()):
        return "cpu"  # known without importing torch (about 2 s), which a cached export does not need
    import torch

    if dev == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if dev == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise BadOptionError("device 'mps' is not available on this machine")
        return "mps"
    if dev == "cuda" or ascii_int(dev) is not None or dev.startswith("cuda:"):
        index = 0 if dev == "cuda" else ascii_int(dev.removeprefix("cuda:"))
        if index is None:
            raise BadOptionError(f"unknown device '{device}': use auto, cpu, cuda, cuda:N or mps")
        if not torch.cuda.is_available():
            raise BadOptionError(f"device '{device}' requested but CUDA is not available; use --device cpu")
        if index >= torch.cuda.device_count():
            raise BadOptionError(
                f"device '{device}' does not exist ({torch.cuda.device_count()} CUDA devices)"
            )
        return f"cuda:{index}"
    raise BadOptionError(f"unknown device '{device}': use auto, cpu, cuda, cuda:N or mps")


@dataclass(frozen=True, slots=True)
class PredictOptions:
    conf: float = 0.25
    iou: float = 0.7
    imgsz: int = 640
    device: str = "cpu"
    classes: tuple[int, ...] | None = None
    max_det: int = 300
    half: bool = False
    nms: bool = False  # extra class-wise NMS at `iou` after an NMS-free model (RT-DETR, YOLO26)


class Detector:
    """A loaded ultralytics model with the options to run it; `predict` returns typed results.

    `backend` says what runs it (torch, or an export: onnx, openvino) and `precision` the arithmetic
    it runs in (fp32, fp16 on CUDA, bf16 for OpenVINO on CPUs that have it).
    """

    weights_sha256: str | None = None  # what its weights are, by content: set by backends.load

    def __init__(
        self,
        ref: ModelRef,
        model: Any,
        options: PredictOptions,
        backend: str = "torch",
        precision: str | None = None,
    ) -> None:
        self.ref = ref
        self.model = model
        self.options = options
        self.backend = backend
        self.precision = precision or ("fp16" if options.half else "fp32")
        self.names: dict[int, str] = dict(model.names)

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def family(self) -> Family:
        return self.ref.family

    @property
    def in_flight(self) -> int:
        """How many pictures the model works on at once, so the run loop hands it that many together
        (an OpenVINO export in THROUGHPUT mode: several; PyTorch: one call per batch)."""
        return 1

    @property
    def nms_free(self) -> bool:
        """True for models that predict without NMS, so `--iou` does nothing (`--nms` adds it): RT-DETR,
        and YOLO models with an end-to-end (one-to-one) head, YOLO26, which `predict` runs end to end."""
        if self.family == "rtdetr":
            return True
        if isinstance(getattr(self.model, "model", None), str):  # an export: the registry says
            spec = self.ref.spec
            return bool(spec and spec.nms_free)
        return has_one2one_head(self.model)

    def predict(self, images: Sequence[np.ndarray]) -> list[tuple[tuple[Detection, ...], Speed]]:
        """Run the model on BGR images (one batch); one (detections, speed) per image."""
        o = self.options
        # No stdout redirect here: it is process-wide and would catch other threads' output (--json
        # lines written behind the run loop). ultralytics' logger already writes to stderr.
        results = self.model.predict(
            list(images),
            conf=o.conf,
            iou=o.iou,
            imgsz=o.imgsz,
            device=o.device,
            classes=list(o.classes) if o.classes is not None else None,
            max_det=o.max_det,
            verbose=False,
            **self._precision_kwargs(),
            **self._head_kwargs(),
        )
        return [
            (self._detections(r), Speed(**{k: float(r.speed[k]) for k in Speed.__slots__})) for r in results
        ]

    def _head_kwargs(self) -> dict[str, Any]:
        """YOLO26 has two heads: one-to-many (needs NMS) and one-to-one (end to end, as published).
        ultralytics 8.4 runs the one-to-many head with NMS unless `nms=False`; ask for the end-to-end one."""
        return {"nms": False} if self.family == "yolo" and self.nms_free else {}

    def _precision_kwargs(self) -> dict[str, Any]:
        """fp16 is `quantize=16` in current ultralytics and `half=True` in older releases."""
        if not self.options.half:
            return {}
        from ultralytics.cfg import DEFAULT_CFG_DICT

        return {"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}

    def _detections(self, result: Any) -> tuple[Detection, ...]:
        boxes = result.boxes
        xyxy, conf, cls = boxes.xyxy, boxes.conf, boxes.cls
        if self.options.nms and self.nms_free and len(conf):
            from torchvision.ops import batched_nms

            keep = batched_nms(xyxy.float(), conf.float(), cls.long(), self.options.iou)
            xyxy, conf, cls = xyxy[keep], conf[keep], cls[keep]
        rows = zip(xyxy.cpu().tolist(), conf.cpu().tolist(), cls.cpu().int().tolist(), strict=True)
        return tuple(Detection(c, self.names.get(c, str(c)), s, tuple(b)) for b, s, c in rows)


def class_tokens(classes: str) -> list[str]:
    """The names or ids of a `--classes` list; an empty list ('', ',') is refused: it would keep no
    detection at all, silently."""
    tokens = [t.strip() for t in classes.split(",") if t.strip()]
    if not tokens:
        raise BadOptionError(
            f"--classes {classes!r} names no class; give names or ids, e.g. 'person,car' or '0,2' "
            "(leave --classes out to keep every class)"
        )
    return tokens


def resolve_classes(classes: str | None, names: dict[int, str]) -> tuple[int, ...] | None:
    """'person,3' -> ids; names are matched case-insensitively against the model's class names, ids
    are ASCII digits."""
    if classes is None:
        return None
    by_name = {n.lower(): i for i, n in names.items()}
    ids: list[int] = []
    for token in class_tokens(classes):
        if (index := ascii_int(token)) is not None and index in names:
            ids.append(index)
        elif token.lower() in by_name:
            ids.append(by_name[token.lower()])
        else:
            raise BadOptionError(
                f"unknown class '{token}' for this model (it knows {len(names)} classes, e.g. "
                + ", ".join(list(names.values())[:5])
                + ")"
            )
    return tuple(dict.fromkeys(ids))


def has_one2one_head(model: Any) -> bool:
    """True for a loaded PyTorch YOLO whose detection head has the end-to-end (one-to-one) branch."""
    layers = getattr(getattr(model, "model", None), "model", None)
    try:
        head = layers[-1]  # type: ignore[index]
    except (TypeError, IndexError, KeyError):
        return False
    return getattr(head, "one2one_cv2", None) is not None


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


def coco_names() -> dict[int, str]:
    """The 80 COCO class names, as ultralytics ships them (cfg/datasets/coco.yaml): the official
    models' classes. Read from the file, without importing ultralytics (a run on a cached export
    imports neither it nor torch)."""
    import importlib.util

    import yaml

    found = importlib.util.find_spec("ultralytics")
    if found is None or found.origin is None:
        raise ModelError("ultralytics is not installed: it ships the COCO class names")
    coco = Path(found.origin).parent / "cfg" / "datasets" / "coco.yaml"
    names = yaml.safe_load(coco.read_text(encoding="utf-8"))["names"]
    return {int(k): str(v) for k, v in names.items()}


def official_config(ref: ModelRef) -> bool:
    """Whether `ref` is the config of an official model (`--offline-fallback`'s stand-in, or
    `-m rtdetr-l.yaml` as ultralytics ships it): the same network untrained, whose classes are COCO's,
    though the config names them "0" … "79"."""
    spec = get_spec(ref.name)
    return spec is not None and (ref.stand_in or ref.location == spec.config)


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


def _check_model_files(location: str) -> None:
    """What can be told about a model file before ultralytics reads it, said as one line: a model
    config that is not YAML (or has no network), an OpenVINO export whose .xml is not XML or whose
    .bin is missing."""
    path = Path(location)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        _check_config(path)
    xmls = [path] if path.suffix == ".xml" else sorted(path.glob("*.xml")) if path.is_dir() else []
    for xml in xmls:
        _check_openvino_xml(xml)


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
    _check_model_files(location)
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


def is_coco80(names: dict[int, str]) -> bool:
    """True for models trained on (or configured with) the 80 COCO classes."""
    return len(names) == 80 and names.get(0) == "person" and names.get(79) == "toothbrush"


def catalog() -> list[dict[str, Any]]:
    """Every official model with where its weights live and whether they are there (for `detect models`)."""
    rows = []
    for spec in REGISTRY:
        path = weights_path(spec)
        rows.append(
            {
                "name": spec.name,
                "family": spec.family,
                "design": spec.design,
                "nms_free": spec.nms_free,
                "ultralytics_class": spec.ultralytics_class,
                "aliases": list(spec.aliases),
                "published_map50_95": spec.published_map,
                "published_source": COCO_VAL_SOURCE,
                "weights": str(path),
                "present": path.is_file(),
                "size_mb": round(path.stat().st_size / 2**20, 1) if path.is_file() else None,
            }
        )
    return rows
