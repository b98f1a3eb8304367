"""Ground truth for `detect compare`: a YOLO data.yaml or a COCO annotations json, matched to the inputs.

Both become one in-memory COCO dataset (pixel xywh boxes), so a single evaluator scores every model.
YOLO labels are found beside each image the way ultralytics finds them (the last `images/` folder of the
path becomes `labels/`, the suffix `.txt`); a missing .txt in an existing labels folder is a background
image, as in ultralytics. COCO images are matched by `file_name` against the end of each input's path.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from detect_cli.errors import InputError, LabelsError
from detect_cli.sources import ImageInput, ascii_int, check_regular, pil_open, read_regular

MAX_LABELS_BYTES = 1024**3
CLIP_NOTE_PX = 0.5  # a box clipped by more than this is said to be; less is rounding in the labels

# What is wrong with labels, one kind per line. Refused kinds end the run (the labels cannot mean what
# they say: a file the user must fix); the others are mended and noted (`GroundTruth.notes`).
DROPPED = "dropped"
CLIPPED = "clipped to the picture"


@dataclass
class Findings:
    """Problems found in one labels file, counted per kind, with the first place each was seen."""

    name: str
    counts: dict[str, list[Any]] = field(default_factory=dict)  # plural -> [count, singular, first, action]

    def add(self, singular: str, plural: str, where: str, action: str | None = None) -> None:
        entry = self.counts.setdefault(plural, [0, singular, where, action])
        entry[0] += 1

    def _line(self, plural: str) -> str:
        n, singular, first, action = self.counts[plural]
        text = f"{n} {singular if n == 1 else plural} (first: {first})"
        return f"{text} — {action}" if action else text

    def refuse(self) -> None:
        """LabelsError, on one line, naming every refused kind found."""
        refused = [p for p, entry in self.counts.items() if entry[3] is None]
        if refused:
            raise LabelsError(f"labels {self.name}: " + "; ".join(self._line(p) for p in refused))

    def notes(self) -> tuple[str, ...]:
        return tuple(f"labels: {self._line(p)}" for p, entry in self.counts.items() if entry[3])


def _whole(value: Any) -> int | None:
    """A JSON/YAML id as an int: an integer, or a float with no fraction (3.0); None for anything else
    ('3', 1.7, true, NaN)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _mend_box(
    box: list[float], width: int, height: int, where: str, findings: Findings
) -> list[float] | None:
    """A pixel xywh box checked against its picture: non-finite or empty boxes are dropped, boxes
    reaching outside the picture clipped (dropped when nothing is left); each is counted."""
    x, y, w, h = box
    if not all(math.isfinite(v) for v in box):
        findings.add(
            "box with a value that is not finite", "boxes with a value that is not finite", where, DROPPED
        )
        return None
    if w <= 0 or h <= 0:
        findings.add("box of no or negative size", "boxes of no or negative size", where, DROPPED)
        return None
    x1, y1 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x2, y2 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    if x2 <= x1 or y2 <= y1:
        findings.add("box wholly outside its picture", "boxes wholly outside their picture", where, DROPPED)
        return None
    if max(abs(x1 - x), abs(y1 - y), abs(x2 - x - w), abs(y2 - y - h)) > CLIP_NOTE_PX:
        findings.add(
            "box reaching outside its picture", "boxes reaching outside their picture", where, CLIPPED
        )
    return [x1, y1, x2 - x1, y2 - y1]


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
        ids = {k: _whole(k) if not isinstance(k, str) else ascii_int(k.strip()) for k in names}
        if all(i is not None and i >= 0 for i in ids.values()):
            return {ids[k]: str(v) for k, v in names.items()}  # type: ignore[misc]
    raise LabelsError(f"{data_yaml} has no class 'names' (a list, or a mapping of id to name)")


def _yolo_boxes(
    label_file: Path, width: int, height: int, names: dict[int, str], findings: Findings
) -> list[tuple[int, list]]:
    """(class id, [x, y, w, h] in pixels) per line; a polygon line (segments) becomes its bounding box.
    Problems are counted in `findings`: refused lines are skipped, mended boxes kept."""
    boxes = []
    for n, line in enumerate(_read_text(label_file).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{label_file} line {n}"
        try:  # float() also reads other scripts' digits ('٣'): a label line is ASCII
            if not line.isascii():
                raise ValueError(line)
            cls_value, values = float(parts[0]), [float(v) for v in parts[1:]]
        except ValueError:
            findings.add(
                "line that is not a YOLO label",
                "lines that are not YOLO labels",
                f"{where}: {line.strip()[:40]!r}",
            )
            continue
        if not (len(values) == 4 or (len(values) >= 6 and len(values) % 2 == 0)):
            findings.add(
                "line that is not a YOLO label",
                "lines that are not YOLO labels",
                f"{where}: {line.strip()[:40]!r}",
            )
            continue
        if not (math.isfinite(cls_value) and cls_value.is_integer()):  # '1.7' is no class; int() made it 1
            findings.add(
                "line whose class is not a whole number",
                "lines whose class is not a whole number",
                f"{where}: {parts[0]!r}",
            )
            continue
        cls = int(cls_value)
        if cls not in names:
            findings.add(
                "line with a class not in the data.yaml names",
                "lines with a class not in the data.yaml names",
                f"{where}: class {cls}",
            )
            continue
        # Positions lie in 0-1 (a little over is rounding, clipped); a negative size is a box of no
        # size (dropped below), a size over 1 or a position far outside says pixels, not fractions.
        points = values if len(values) > 4 else values[:2]
        if any(math.isfinite(v) and not -0.01 <= v <= 1.01 for v in points) or any(
            math.isfinite(v) and v > 1.01 for v in values[2:4]
        ):
            findings.add(
                "line with coordinates not normalised to 0-1 (pixels?)",
                "lines with coordinates not normalised to 0-1 (pixels?)",
                where,
            )
            continue
        if len(values) == 4:
            cx, cy, w, h = values
            box = [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]
        else:
            xs, ys = values[0::2], values[1::2]
            box = [
                min(xs) * width,
                min(ys) * height,
                (max(xs) - min(xs)) * width,
                (max(ys) - min(ys)) * height,
            ]
        mended = _mend_box(box, width, height, where, findings)  # clipped, as ultralytics does
        if mended is not None:
            boxes.append((cls, mended))
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
    findings = Findings(data_yaml.name)
    owners: dict[Path, str] = {}
    for item, label_file in zip(inputs, label_files, strict=True):  # x.jpg and x.png both read x.txt
        if (other := owners.setdefault(label_file, item.source)) != item.source:
            findings.add(
                "label file read by two images",
                "label files read by two images",
                f"{label_file} for {other} and {item.source}",
            )
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
        for cls, box in _yolo_boxes(label_file, size[0], size[1], names, findings):
            coco["annotations"].append(_annotation(len(coco["annotations"]) + 1, image_id, cls, box))
    findings.refuse()
    notes = (
        (f"{backgrounds} images have no label file: scored as background (no objects)",)
        if backgrounds
        else ()
    )
    return GroundTruth(str(data_yaml), "yolo", names, coco, image_ids, (*notes, *findings.notes()))


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
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise LabelsError(
            f"{coco_json} is not COCO annotations (needs lists of images, annotations and categories)"
        )
    return data


def _check_coco(data: dict[str, Any], findings: Findings) -> tuple[dict[int, str], list[dict], list[dict]]:
    """The categories, images and annotations whose fields have the types COCO gives them, ids as ints;
    the others, repeated ids, and annotations naming an image or category that is not there, are
    counted in `findings` (all refused)."""
    categories: dict[int, str] = {}
    for n, c in enumerate(data["categories"], 1):
        cid = _whole(c.get("id")) if isinstance(c, dict) else None
        if cid is None or not isinstance(c.get("name"), str):
            findings.add(
                "category without an integer id and a name",
                "categories without an integer id and a name",
                f"category #{n}: {str(c)[:60]}",
            )
        elif cid in categories:
            findings.add("category id used twice", "category ids used twice", f"category {cid}")
        else:
            categories[cid] = c["name"]
    images: list[dict] = []
    seen: set[int] = set()
    for n, image in enumerate(data["images"], 1):
        iid = _whole(image.get("id")) if isinstance(image, dict) else None
        sizes = [image.get(k) for k in ("width", "height") if k in image] if iid is not None else []
        if (
            iid is None
            or not isinstance(image.get("file_name"), str)
            or not all(_whole(v) is not None and v > 0 for v in sizes)
        ):
            findings.add(
                "image without an integer id and a file_name (or with a width or height that is not a "
                "positive integer)",
                "images without an integer id and a file_name (or with a width or height that is not a "
                "positive integer)",
                f"image #{n}: {str(image)[:60]}",
            )
        elif iid in seen:
            findings.add("image id used twice", "image ids used twice", f"image {iid}")
        else:
            seen.add(iid)
            images.append({**image, "id": iid})
    annotations: list[dict] = []
    for n, a in enumerate(data["annotations"], 1):
        fields = (a.get("image_id"), a.get("category_id")) if isinstance(a, dict) else (None, None)
        image_id, category_id = (_whole(v) for v in fields)
        where = f"annotation {a.get('id', f'#{n}')}" if isinstance(a, dict) else f"annotation #{n}"
        box = a.get("bbox") if isinstance(a, dict) else None
        if (
            image_id is None
            or category_id is None
            or not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box))
            or a.get("iscrowd", 0) not in (0, 1)
            or ("area" in a and not _is_number(a["area"]))
        ):
            findings.add(
                "annotation without an integer image_id and category_id and a bbox of 4 numbers",
                "annotations without an integer image_id and category_id and a bbox of 4 numbers",
                f"{where}: {str(a)[:60]}",
            )
        elif image_id not in seen:
            findings.add(
                "annotation of an image id not in images",
                "annotations of image ids not in images",
                f"{where}, image {image_id}",
            )
        elif category_id not in categories:
            findings.add(
                "annotation of a category id not in categories",
                "annotations of category ids not in categories",
                f"{where}, category {category_id}",
            )
        else:
            annotations.append({**a, "image_id": image_id, "category_id": category_id, "where": where})
    return categories, images, annotations


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
    findings = Findings(coco_json.name)
    categories, all_images, all_annotations = _check_coco(_read_coco(coco_json), findings)
    findings.refuse()
    by_name: dict[str, list[dict]] = {}
    for image in all_images:
        by_name.setdefault(PurePosixPath(image["file_name"].replace("\\", "/")).name, []).append(image)
    matched = {i.source: _match_file_name(i.path, by_name) for i in inputs}  # type: ignore[arg-type]
    unmatched = [s for s, image in matched.items() if image is None]
    if unmatched:
        raise LabelsError(
            f"labels do not match the images: {len(unmatched)} of {len(inputs)} images are not in "
            f"{coco_json.name} (matched by file_name), e.g. {unmatched[0]}"
        )
    owners: dict[int, str] = {}
    for source, image in matched.items():  # a/x.jpg and b/x.jpg both matching 'x.jpg'
        assert image is not None
        if (other := owners.setdefault(image["id"], source)) != source:
            findings.add(
                "labelled image matched by two inputs",
                "labelled images matched by two inputs",
                f"image {image['id']} ({image['file_name']}) by {other} and {source}",
            )
    findings.refuse()
    images, image_ids, sizes = [], {}, {}
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
        sizes[image["id"]] = size
    annotations = []
    for a in all_annotations:
        if a["image_id"] not in sizes:
            continue
        box = _mend_box(
            [float(v) for v in a["bbox"]],
            *sizes[a["image_id"]],
            f"image {a['image_id']}, {a['where']}",
            findings,
        )
        if box is None:
            continue
        area = a["area"] if "area" in a and box == [float(v) for v in a["bbox"]] else box[2] * box[3]
        annotations.append(
            _annotation(len(annotations) + 1, a["image_id"], a["category_id"], box, int(a.get("iscrowd", 0)))
            | {"area": area}
        )
    coco = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": n} for c, n in categories.items()],
    }
    return GroundTruth(str(coco_json), "coco", categories, coco, image_ids, findings.notes())
