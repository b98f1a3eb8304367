from __future__ import annotations

import json
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
    return "class 7 is not in the data.yaml names"


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
