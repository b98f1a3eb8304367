from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import make_image
from labeled_data import TINY_BOXES, TINY_NAMES, tiny_dataset

from detect_cli.compare.labels import load_labels
from detect_cli.errors import LabelsError
from detect_cli.sources import discover_images


def _boxes(gt) -> list[tuple[str, str, tuple[float, ...]]]:  # type: ignore[no-untyped-def]
    """(image file, class name, rounded xywh) for every labelled object, sorted."""
    files = {i["id"]: Path(i["file_name"]).name for i in gt.coco["images"]}
    return sorted(
        (files[a["image_id"]], gt.categories[a["category_id"]], tuple(round(v, 2) for v in a["bbox"]))
        for a in gt.coco["annotations"]
    )


def test_yolo_and_coco_labels_give_the_same_ground_truth(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path / "ds")
    items = discover_images([str(ds.images)])
    yolo = load_labels(items, data_yaml=ds.data_yaml)
    coco = load_labels(items, coco_json=ds.coco_json)
    expected = sorted(
        (name, TINY_NAMES[c], (float(x1), float(y1), float(x2 - x1), float(y2 - y1)))
        for name, rows in TINY_BOXES.items()
        for c, x1, y1, x2, y2 in rows
    )
    assert _boxes(yolo) == _boxes(coco) == expected
    assert set(yolo.image_ids) == set(coco.image_ids) == {i.source for i in items}
    assert yolo.instances == coco.instances == 6


def test_missing_label_file_is_a_background_image(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path / "ds")
    (ds.root / "labels" / "val" / "c.txt").unlink()
    gt = load_labels(discover_images([str(ds.images)]), data_yaml=ds.data_yaml)
    assert gt.instances == 5 and len(gt.image_ids) == 4
    assert gt.notes == ("1 images have no label file: scored as background (no objects)",)


def test_polygon_labels_become_their_bounding_box(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path / "ds")
    (ds.root / "labels" / "val" / "c.txt").write_text("1 0.25 0.25 0.75 0.25 0.5 0.75\n")
    gt = load_labels(discover_images([str(ds.images / "c.jpg")]), data_yaml=ds.data_yaml)
    [ann] = gt.coco["annotations"]
    assert ann["bbox"] == pytest.approx([32, 24, 64, 48])


def _break_class(ds) -> str:  # type: ignore[no-untyped-def]
    (ds.root / "labels" / "val" / "a.txt").write_text("7 0.5 0.5 0.1 0.1\n")
    return "1 line with a class not in the data.yaml names .*a.txt line 1: class 7"


def _break_coords(ds) -> str:  # type: ignore[no-untyped-def]
    (ds.root / "labels" / "val" / "a.txt").write_text("0 50 40 10 10\n")
    return "not normalised to 0-1"


def _break_line(ds) -> str:  # type: ignore[no-untyped-def]
    (ds.root / "labels" / "val" / "a.txt").write_text("cat 0.5 0.5\n")
    return "not a YOLO label"


def _no_names(ds) -> str:  # type: ignore[no-untyped-def]
    ds.data_yaml.write_text("path: .\nval: images/val\n")
    return "has no class 'names'"


@pytest.mark.parametrize("breaker", [_break_class, _break_coords, _break_line, _no_names])
def test_bad_yolo_labels_say_where(tmp_path: Path, breaker) -> None:  # type: ignore[no-untyped-def]
    ds = tiny_dataset(tmp_path / "ds")
    message = breaker(ds)
    with pytest.raises(LabelsError, match=message):
        load_labels(discover_images([str(ds.images)]), data_yaml=ds.data_yaml)


def test_images_outside_the_dataset_do_not_match(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path / "ds")
    stray = make_image(tmp_path / "photos" / "x.jpg")
    items = discover_images([str(ds.images), str(stray)])
    with pytest.raises(LabelsError, match=r"labels do not match the images: 1 of 5 images have no YOLO"):
        load_labels(items, data_yaml=ds.data_yaml)
    with pytest.raises(LabelsError, match=r"1 of 5 images are not in annotations.json .*photos/x.jpg"):
        load_labels(items, coco_json=ds.coco_json)


def test_coco_sizes_must_match_the_images(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path / "ds")
    data = json.loads(ds.coco_json.read_text())
    data["images"][0]["width"] = 640
    ds.coco_json.write_text(json.dumps(data))
    with pytest.raises(LabelsError, match=r"says a.jpg is 640x96, but .* is 128x96"):
        load_labels(discover_images([str(ds.images)]), coco_json=ds.coco_json)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "is not valid JSON"), ('{"images": []}', "is not COCO annotations")],
)
def test_bad_coco_files(tmp_path: Path, content: str, message: str) -> None:
    ds = tiny_dataset(tmp_path / "ds")
    ds.coco_json.write_text(content)
    with pytest.raises(LabelsError, match=message):
        load_labels(discover_images([str(ds.images)]), coco_json=ds.coco_json)


@pytest.mark.parametrize("kind", ["data.yaml", "coco.json"])
def test_a_fifo_given_as_labels_is_refused_not_waited_on(tmp_path: Path, kind: str) -> None:
    """A FIFO where labels are expected: one LabelsError at once, never a read that blocks."""
    import os
    import threading

    fifo = tmp_path / kind
    os.mkfifo(fifo)
    raised: list[BaseException] = []

    def load() -> None:
        try:
            load_labels([], fifo if kind == "data.yaml" else None, fifo if kind == "coco.json" else None)
        except BaseException as e:
            raised.append(e)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "blocked on the FIFO"
    assert len(raised) == 1 and isinstance(raised[0], LabelsError) and "not a regular file" in str(raised[0])


# --- the labels validator: one line per kind of problem, refused (exit 2) or mended and noted -------

# (what a.txt holds, the LabelsError or None, the notes, a.jpg's boxes as pixel xywh); a.jpg is 128x96
YOLO_CASES = {
    "class 1.7": (
        "1.7 0.5 0.5 0.2 0.2\n",
        r"1 line whose class is not a whole number \(first: .*a.txt line 1: '1.7'\)",
        (),
        None,
    ),
    "class nan": ("nan 0.5 0.5 0.2 0.2\n", "class is not a whole number", (), None),
    "class 1.0 is 1": ("1.0 0.5 0.5 0.25 0.5\n", None, (), [(1, [48.0, 24.0, 32.0, 48.0])]),
    "two classes not in names": (
        "7 0.5 0.5 0.1 0.1\n9 0.5 0.5 0.1 0.1\n",
        r"2 lines with a class not in the data.yaml names \(first: .*a.txt line 1: class 7\)$",
        (),
        None,
    ),
    "not numbers": ("0 a b c d\n", "1 line that is not a YOLO label", (), None),
    "Arabic-Indic digits": ("\u0661 0.5 0.5 0.2 0.2\n", "1 line that is not a YOLO label", (), None),
    "superscript digit": ("\u00b2 0.5 0.5 0.2 0.2\n", "1 line that is not a YOLO label", (), None),
    "two kinds in one line": (
        "1.5 0.5 0.5 0.1 0.1\n0 1 2\n",
        "1 line whose class is not a whole number .*; 1 line that is not a YOLO label",
        (),
        None,
    ),
    "negative size": (
        "0 0.5 0.5 -0.2 0.2\n0 0.5 0.5 0.25 0.5\n",
        None,
        (r"labels: 1 box of no or negative size \(first: .*a.txt line 1\) — dropped",),
        [(0, [48.0, 24.0, 32.0, 48.0])],
    ),
    "non-finite": ("0 0.5 inf 0.2 0.2\n", None, ("1 box with a value that is not finite .* dropped",), []),
    "outside the picture": (
        "0 0.0 0.5 0.5 0.5\n",
        None,
        (r"labels: 1 box reaching outside its picture \(first: .*a.txt line 1\) — clipped to the picture",),
        [(0, [0.0, 24.0, 32.0, 48.0])],
    ),
}


@pytest.mark.parametrize("case", list(YOLO_CASES))
def test_yolo_label_problems(tmp_path: Path, case: str) -> None:
    text, error, notes, boxes = YOLO_CASES[case]
    ds = tiny_dataset(tmp_path / "ds")
    (ds.root / "labels" / "val" / "a.txt").write_text(text)
    items = discover_images([str(ds.images / "a.jpg")])
    if error:
        with pytest.raises(LabelsError, match=error):
            load_labels(items, data_yaml=ds.data_yaml)
        return
    gt = load_labels(items, data_yaml=ds.data_yaml)
    assert len(gt.notes) == len(notes) and all(
        re.search(n, got) for n, got in zip(notes, gt.notes, strict=True)
    )
    assert [(a["category_id"], pytest.approx(a["bbox"])) for a in gt.coco["annotations"]] == boxes


def test_two_images_reading_one_yolo_label_file_are_refused(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path / "ds")
    make_image(ds.images / "a.png")
    with pytest.raises(
        LabelsError, match=r"1 label file read by two images \(first: .*a.txt for .*a.jpg and .*a.png\)"
    ):
        load_labels(discover_images([str(ds.images)]), data_yaml=ds.data_yaml)


def _ann(data: dict, **fields: object) -> None:
    data["annotations"][0].update(fields)


# (a change to annotations.json, the LabelsError or None, the notes, annotations kept of 6)
COCO_CASES = {
    "bbox missing": (
        lambda d: d["annotations"][0].pop("bbox"),
        r"1 annotation without .* a bbox of 4 numbers \(first: annotation 1",
        (),
        None,
    ),
    "bbox of 3": (lambda d: _ann(d, bbox=[1, 2, 3]), "bbox of 4 numbers", (), None),
    "bbox of strings": (lambda d: _ann(d, bbox=["1", 2, 3, 4]), "bbox of 4 numbers", (), None),
    "image id a string": (
        lambda d: d["images"][0].update(id="1"),
        r"1 image without an integer id",
        (),
        None,
    ),
    "category id 1.5": (
        lambda d: d["categories"][0].update(id=1.5),
        "1 category without an integer id",
        (),
        None,
    ),
    "annotation image_id a string": (
        lambda d: _ann(d, image_id="1"),
        "1 annotation without an integer image_id",
        (),
        None,
    ),
    "annotation not an object": (lambda d: d["annotations"].append(7), r"annotation #7: 7", (), None),
    "images not a list": (lambda d: d.update(images={}), "needs lists of images", (), None),
    "duplicate image ids": (
        lambda d: d["images"][1].update(id=1),
        r"1 image id used twice \(first: image 1\)",
        (),
        None,
    ),
    "duplicate category ids": (
        lambda d: d["categories"][1].update(id=1),
        "1 category id used twice",
        (),
        None,
    ),
    "category not in categories": (
        lambda d: _ann(d, category_id=99),
        r"1 annotation of a category id not in categories \(first: annotation 1, category 99\)",
        (),
        None,
    ),
    "image not in images": (
        lambda d: _ann(d, image_id=99),
        "1 annotation of an image id not in images",
        (),
        None,
    ),
    "two kinds": (
        lambda d: (_ann(d, category_id=99), d["images"][1].update(id=1)),
        "image id used twice .*; 1 annotation of a category id not in categories",
        (),
        None,
    ),
    "negative size": (
        lambda d: (_ann(d, bbox=[10, 10, -5, 20]), d["annotations"][1].update(bbox=[10, 10, 0, 20])),
        None,
        (r"labels: 2 boxes of no or negative size \(first: image 1, annotation 1\) — dropped",),
        4,
    ),
    "NaN box": (
        lambda d: _ann(d, bbox=[float("nan"), 1, 2, 3]),
        None,
        ("1 box with a value that is not finite",),
        5,
    ),
    "outside the picture": (
        lambda d: (_ann(d, bbox=[100, 50, 100, 100]), d["annotations"][1].update(bbox=[500, 500, 10, 10])),
        None,
        (
            r"labels: 1 box reaching outside its picture \(first: image 1, annotation 1\) — clipped",
            r"labels: 1 box wholly outside its picture \(first: image 1, annotation 2\) — dropped",
        ),
        5,
    ),
}


@pytest.mark.parametrize("case", list(COCO_CASES))
def test_coco_label_problems(tmp_path: Path, case: str) -> None:
    change, error, notes, kept = COCO_CASES[case]
    ds = tiny_dataset(tmp_path / "ds")
    data = json.loads(ds.coco_json.read_text())
    change(data)
    ds.coco_json.write_text(json.dumps(data))
    items = discover_images([str(ds.images)])
    if error:
        with pytest.raises(LabelsError, match=error):
            load_labels(items, coco_json=ds.coco_json)
        return
    gt = load_labels(items, coco_json=ds.coco_json)
    assert len(gt.notes) == len(notes) and all(
        re.search(n, got) for n, got in zip(notes, gt.notes, strict=True)
    )
    assert len(gt.coco["annotations"]) == kept
    for a in gt.coco["annotations"]:
        x, y, w, h = a["bbox"]
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= 128 and y + h <= 96


def test_clipped_coco_box_keeps_the_part_inside(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path / "ds")
    data = json.loads(ds.coco_json.read_text())
    data["annotations"][0]["bbox"] = [100, 50, 100, 100]  # a.jpg (image 1) is 128x96
    ds.coco_json.write_text(json.dumps(data))
    gt = load_labels(discover_images([str(ds.images / "a.jpg")]), coco_json=ds.coco_json)
    first = next(a for a in gt.coco["annotations"] if a["id"] == 1)
    assert first["bbox"] == [100.0, 50.0, 28.0, 46.0] and first["area"] == 28.0 * 46.0


def test_one_labelled_image_matched_by_two_inputs_is_refused(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path / "ds")
    twin = tmp_path / "elsewhere" / "a.jpg"
    twin.parent.mkdir()
    twin.write_bytes((ds.images / "a.jpg").read_bytes())
    items = discover_images([str(ds.images / "a.jpg"), str(twin)])
    with pytest.raises(
        LabelsError, match=r"1 labelled image matched by two inputs \(first: image 1 \(a.jpg\) by "
    ):
        load_labels(items, coco_json=ds.coco_json)


@pytest.mark.parametrize(
    ("names", "error"),
    [
        ("{0: cat, 1: dog, 2: bird}", None),
        ("{'0': cat, '1': dog, '2': bird}", None),
        ("{'\u0660': cat, '1': dog, '2': bird}", "has no class 'names'"),  # an Arabic-Indic 0
        ("{'\u00b2': cat}", "has no class 'names'"),
        ("{true: cat}", "has no class 'names'"),
        ("{-1: cat}", "has no class 'names'"),
    ],
)
def test_yolo_class_ids_in_names_are_ascii_integers(tmp_path: Path, names: str, error: str | None) -> None:
    ds = tiny_dataset(tmp_path / "ds")
    ds.data_yaml.write_text(f'path: .\nval: images/val\nnames: "{names}"\n'.replace('"', ""))
    items = discover_images([str(ds.images)])
    if error:
        with pytest.raises(LabelsError, match=error):
            load_labels(items, data_yaml=ds.data_yaml)
    else:
        assert load_labels(items, data_yaml=ds.data_yaml).categories == {0: "cat", 1: "dog", 2: "bird"}
