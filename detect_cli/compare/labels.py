"""Ground truth for `detect compare`: a YOLO data.yaml or a COCO annotations json, matched to the inputs.

Both become one in-memory COCO dataset (pixel xywh boxes), so a single evaluator scores every model.
YOLO labels are found beside each image the way ultralytics finds them (the last `images/` folder of the
path becomes `labels/`, the suffix `.txt`); a missing .txt in an existing labels folder is a background
image, as in ultralytics. COCO images are matched by `file_name` against the end of each input's path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from detect_cli.errors import InputError, LabelsError
from detect_cli.sources import ImageInput, check_regular, pil_open, read_regular

MAX_LABELS_BYTES = 1024**3


def _read_text(path: Path) -> str:
    """A labels file's text. Read as the images are (regular files only: a FIFO given as --data or
    found as a label file is refused, not waited on); LabelsError says why it cannot be read."""
    try:
        data = read_regular(path, MAX_LABELS_BYTES, what="labels file")[0]
        return data.decode("utf-8-sig")
    except InputError as e:
        raise LabelsError(f"cannot read {path}: {e}") from e
    except UnicodeDecodeError as e:
        raise LabelsError(f"{path} is not UTF-8 text (byte {e.start})") from e


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """Labels for the inputs: `coco` is a COCO dataset dict; `image_ids` maps an input's source to its id."""

    path: str
    kind: Literal["yolo", "coco"]
    categories: dict[int, str]
    coco: dict[str, Any]
    image_ids: dict[str, int]
    notes: tuple[str, ...] = field(default=())

    @property
    def instances(self) -> int:
        return sum(1 for a in self.coco["annotations"] if not a.get("iscrowd"))


def load_labels(
    items: Sequence[ImageInput], data_yaml: Path | None = None, coco_json: Path | None = None
) -> GroundTruth:
    """Labels for the readable inputs from exactly one of `data_yaml` / `coco_json`."""
    if (data_yaml is None) == (coco_json is None):
        raise LabelsError("give labels as one of --data (a YOLO data.yaml) or --coco (a COCO json)")
    inputs = [i for i in items if i.error is None]
    if any(i.path is None for i in inputs):
        url = next(i.source for i in inputs if i.path is None)
        raise LabelsError(f"labels cannot be matched to a URL input ({url}); download the images first")
    if data_yaml is not None:
        return load_yolo(data_yaml, inputs)
    assert coco_json is not None
    return load_coco(coco_json, inputs)


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as the image will be decoded (EXIF rotation applied); None if unreadable."""
    from ultralytics.data.utils import exif_size

    try:
        check_regular(path)  # a FIFO named like a picture would block the header read
        with pil_open(path) as im:
            return exif_size(im)
    except Exception:  # not an image Pillow knows, or unreadable
        return None  # recorded as a failed input when it is read; it gets no labels


def _yolo_names(data_yaml: Path) -> dict[int, str]:
    import yaml

    try:
        data = yaml.safe_load(_read_text(data_yaml))
    except yaml.YAMLError as e:
        raise LabelsError(f"{data_yaml} is not valid YAML: {str(e).splitlines()[0]}") from e
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, list):
        return {i: str(n) for i, n in enumerate(names)}
    if isinstance(names, dict):
        try:
            return {int(k): str(v) for k, v in names.items()}
        except ValueError:
            pass
    raise LabelsError(f"{data_yaml} has no class 'names' (a list, or a mapping of id to name)")


def _yolo_boxes(label_file: Path, width: int, height: int, names: dict[int, str]) -> list[tuple[int, list]]:
    """(class id, [x, y, w, h] in pixels) per line; a polygon line (segments) becomes its bounding box."""
    boxes = []
    for n, line in enumerate(_read_text(label_file).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            cls, values = int(float(parts[0])), [float(v) for v in parts[1:]]
        except ValueError:
            raise LabelsError(f"{label_file} line {n}: not a YOLO label ('class cx cy w h')") from None
        if cls not in names:
            raise LabelsError(f"{label_file} line {n}: class {cls} is not in the data.yaml names")
        if not (len(values) == 4 or (len(values) >= 6 and len(values) % 2 == 0)):
            raise LabelsError(f"{label_file} line {n}: not a YOLO label ('class cx cy w h')")
        if min(values) < -0.01 or max(values) > 1.01:
            raise LabelsError(f"{label_file} line {n}: coordinates are not normalised to 0-1")
        if len(values) == 4:
            cx, cy, w, h = values
            x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        else:
            xs, ys = values[0::2], values[1::2]
            x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        x1, y1, x2, y2 = (min(max(v, 0.0), 1.0) for v in (x1, y1, x2, y2))  # clipped, as ultralytics does
        boxes.append((cls, [x1 * width, y1 * height, (x2 - x1) * width, (y2 - y1) * height]))
    return boxes


def load_yolo(data_yaml: Path, inputs: Sequence[ImageInput]) -> GroundTruth:
    from ultralytics.data.utils import img2label_paths

    names = _yolo_names(data_yaml)
    marker = f"{os.sep}images{os.sep}"
    unmatched = [i.source for i in inputs if marker not in os.fspath(i.path)]
    label_files = [Path(p) for p in img2label_paths([i.path for i in inputs])]
    unmatched += [i.source for i, f in zip(inputs, label_files, strict=True) if not f.parent.is_dir()]
    if unmatched:
        raise LabelsError(
            f"labels do not match the images: {len(set(unmatched))} of {len(inputs)} images have no YOLO "
            f"labels folder (an image at .../images/x.jpg has its labels at .../labels/x.txt), "
            f"e.g. {unmatched[0]}"
        )
    coco: dict[str, Any] = {
        "images": [],
        "annotations": [],
        "categories": [{"id": i, "name": n} for i, n in names.items()],
    }
    image_ids: dict[str, int] = {}
    backgrounds = 0
    for item, label_file in zip(inputs, label_files, strict=True):
        size = _image_size(item.path)  # type: ignore[arg-type]
        if size is None:
            continue
        image_id = len(image_ids) + 1
        image_ids[item.source] = image_id
        coco["images"].append({"id": image_id, "file_name": item.source, "width": size[0], "height": size[1]})
        if not label_file.is_file():
            backgrounds += 1
            continue
        for cls, box in _yolo_boxes(label_file, size[0], size[1], names):
            coco["annotations"].append(_annotation(len(coco["annotations"]) + 1, image_id, cls, box))
    notes = (
        (f"{backgrounds} images have no label file: scored as background (no objects)",)
        if backgrounds
        else ()
    )
    return GroundTruth(str(data_yaml), "yolo", names, coco, image_ids, notes)


def _annotation(ann_id: int, image_id: int, category_id: int, box: list[float], iscrowd: int = 0) -> dict:
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": box,
        "area": box[2] * box[3],
        "iscrowd": iscrowd,
    }


def _read_coco(coco_json: Path) -> dict[str, Any]:
    try:
        data = json.loads(_read_text(coco_json))
    except json.JSONDecodeError as e:
        raise LabelsError(f"{coco_json} is not valid JSON: {e}") from e
    if not isinstance(data, dict) or not all(k in data for k in ("images", "annotations", "categories")):
        raise LabelsError(f"{coco_json} is not COCO annotations (needs images, annotations and categories)")
    return data


def _match_file_name(source: Path, by_name: dict[str, list[dict]]) -> dict | None:
    """The COCO image whose file_name is the longest tail of the input's path."""
    parts = PurePosixPath(source.as_posix()).parts
    candidates = by_name.get(parts[-1], [])
    best, best_len = None, 0
    for image in candidates:
        tail = PurePosixPath(str(image["file_name"]).replace("\\", "/")).parts
        if tuple(parts[-len(tail) :]) == tail and len(tail) > best_len:
            best, best_len = image, len(tail)
    return best


def load_coco(coco_json: Path, inputs: Sequence[ImageInput]) -> GroundTruth:
    data = _read_coco(coco_json)
    by_name: dict[str, list[dict]] = {}
    for image in data["images"]:
        by_name.setdefault(PurePosixPath(str(image["file_name"]).replace("\\", "/")).name, []).append(image)
    matched = {i.source: _match_file_name(i.path, by_name) for i in inputs}  # type: ignore[arg-type]
    unmatched = [s for s, image in matched.items() if image is None]
    if unmatched:
        raise LabelsError(
            f"labels do not match the images: {len(unmatched)} of {len(inputs)} images are not in "
            f"{coco_json.name} (matched by file_name), e.g. {unmatched[0]}"
        )
    images, image_ids = [], {}
    for item in inputs:
        image = matched[item.source]
        assert image is not None
        size = _image_size(item.path)  # type: ignore[arg-type]
        if size is None:
            continue
        if "width" in image and (image["width"], image["height"]) != size:
            raise LabelsError(
                f"labels do not match the images: {coco_json.name} says {image['file_name']} is "
                f"{image['width']}x{image['height']}, but {item.source} is {size[0]}x{size[1]}"
            )
        images.append({**image, "width": size[0], "height": size[1]})
        image_ids[item.source] = image["id"]
    wanted = set(image_ids.values())
    annotations = [
        _annotation(
            a.get("id", n), a["image_id"], a["category_id"], list(a["bbox"]), int(a.get("iscrowd", 0))
        )
        | ({"area": a["area"]} if "area" in a else {})
        for n, a in enumerate(data["annotations"], 1)
        if a["image_id"] in wanted
    ]
    categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
    coco = {"images": images, "annotations": annotations, "categories": data["categories"]}
    return GroundTruth(str(coco_json), "coco", categories, coco, image_ids)
