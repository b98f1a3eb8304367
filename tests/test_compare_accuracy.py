from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL_IMGSZ
from labeled_data import Dataset, tiny_dataset, write_dataset

from detect_cli.compare.accuracy import detections_to_coco, evaluate
from detect_cli.compare.labels import GroundTruth, load_labels
from detect_cli.compare.loop import run_comparison
from detect_cli.compare.results import CompareSettings
from detect_cli.errors import LabelsError
from detect_cli.geometry import clip_detections
from detect_cli.models import PredictOptions, load, resolve
from detect_cli.pipeline import image_frames
from detect_cli.results import Detection
from detect_cli.sources import discover_images


def det(cls: str, conf: float, box: tuple[float, float, float, float]) -> Detection:
    return Detection(0, cls, conf, box)


BOX = (10.0, 10.0, 50.0, 50.0)


# --- accuracy against known answers ---------------------------------------------------------------


def _gt_as_predictions(gt: GroundTruth, dx: float = 0.0) -> np.ndarray:
    """Every labelled box as a prediction (score 0.9), moved `dx` pixels right."""
    rows = [
        (a["image_id"], a["bbox"][0] + dx, a["bbox"][1], a["bbox"][2], a["bbox"][3], 0.9, a["category_id"])
        for a in gt.coco["annotations"]
    ]
    return np.array(rows, dtype=float)


@pytest.mark.parametrize("fmt", ["yolo", "coco"])
def test_ground_truth_as_predictions_scores_one_and_shifting_lowers_it(tmp_path: Path, fmt: str) -> None:
    ds = tiny_dataset(tmp_path / "ds")
    items = discover_images([str(ds.images)])
    gt = load_labels(items, **({"data_yaml": ds.data_yaml} if fmt == "yolo" else {"coco_json": ds.coco_json}))
    perfect = evaluate(gt, _gt_as_predictions(gt))
    assert (perfect.map50_95, perfect.map50, perfect.precision, perfect.recall) == (1.0, 1.0, 1.0, 1.0)
    assert perfect.instances == 6 and perfect.images == 4
    assert {r.class_name: r.instances for r in perfect.per_class} == {"cat": 3, "dog": 2, "bird": 1}
    shifted = evaluate(gt, _gt_as_predictions(gt, dx=4.0))  # IoU 0.8-0.9: lost at the strict thresholds
    assert shifted.map50 == 1.0 and 0.3 < shifted.map50_95 < 0.9
    far = evaluate(gt, _gt_as_predictions(gt, dx=30.0))
    assert far.map50_95 < shifted.map50_95 and far.recall < 1.0
    # Precision and recall count only boxes at or above the run's confidence threshold.
    assert evaluate(gt, _gt_as_predictions(gt), conf=0.95).recall == 0.0
    assert evaluate(gt, _gt_as_predictions(gt)[:0]).map50_95 == 0.0  # no predictions at all


def test_only_the_given_class_names_are_scored(tmp_path: Path) -> None:
    ds = tiny_dataset(tmp_path / "ds")
    gt = load_labels(discover_images([str(ds.images)]), data_yaml=ds.data_yaml)
    preds = _gt_as_predictions(gt)
    preds = preds[preds[:, 6] != 0]  # the model found no cats
    assert evaluate(gt, preds).map50_95 == pytest.approx(2 / 3)
    assert evaluate(gt, preds, class_names=["dog", "bird"]).map50_95 == pytest.approx(1.0)
    with pytest.raises(LabelsError, match="share no class names"):
        evaluate(gt, preds, class_names=["zebra"])


# --- real models ----------------------------------------------------------------------------------


def _detector(path: Path, conf: float = 0.01):  # type: ignore[no-untyped-def]
    return load(resolve(str(path), "rtdetr"), PredictOptions(conf=conf, imgsz=SMALL_IMGSZ, device="cpu"))


@pytest.fixture(scope="module")
def spread_rtdetr_pt(rtdetr_pt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded RT-DETR with seeded noise added to its score heads. Freshly initialised, RT-DETR gives
    hundreds of boxes with identical scores, and AP over tied scores depends on sort order, which no two
    evaluators need share; the noise spreads the scores apart and leaves the boxes (anchor-sized squares)
    alone. Noise on every weight was tried and gives sub-pixel-thin boxes instead: a degenerate case."""
    import torch
    from ultralytics import RTDETR

    model = RTDETR(str(rtdetr_pt))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.model.named_parameters():
            if "score_head" in name:
                scale = p.std() if p.numel() > 1 and p.std() > 0 else 1.0
                p.add_(torch.randn(p.shape, generator=g) * scale)
    path = tmp_path_factory.mktemp("spread") / "rtdetr-spread.pt"
    model.save(path)
    return path


def self_labelled(root: Path, weights: Path, n_images: int = 6) -> Dataset:
    """A dataset whose labels are some of the model's own boxes (clipped; some shifted a little so
    mAP50-95 and mAP50 differ), on square images of SMALL_IMGSZ so predict and val see the same pixels."""
    import cv2

    detector = _detector(weights, conf=0.001)
    names = [detector.names[i] for i in range(len(detector.names))]
    size = (SMALL_IMGSZ, SMALL_IMGSZ)
    ds = write_dataset(root, {f"{k}.jpg": [] for k in range(n_images)}, names, size)  # the images
    boxes = {}
    for k in range(n_images):
        [(dets, _)] = detector.predict([cv2.imread(str(ds.images / f"{k}.jpg"))])
        ranked = sorted(clip_detections(dets, SMALL_IMGSZ, SMALL_IMGSZ), key=lambda d: -d.confidence)
        rows = []
        for j, d in enumerate(ranked[:60:10]):
            x1, y1, x2, y2 = d.xyxy
            dx = (x2 - x1) * (0.0, 0.1, 0.25)[j % 3]
            rows.append((d.class_id, min(x1 + dx, SMALL_IMGSZ), y1, min(x2 + dx, SMALL_IMGSZ), y2))
        boxes[f"{k}.jpg"] = rows
    return write_dataset(root, boxes, names, size)  # the same images (seeded), now with labels


def test_accuracy_agrees_with_ultralytics_val(spread_rtdetr_pt: Path, tmp_path: Path) -> None:
    """Our numbers (predict -> COCO results -> pycocotools) against `val` on the same model and data.

    On square images of imgsz both see the same pixels, so the boxes are the same (checked by scoring
    val's own predictions.json: equal to 4 decimals bar its 5-decimal score rounding). The numbers differ
    in how AP is integrated: pycocotools reads the precision envelope at 101 recall points as a step
    function; ultralytics interpolates the envelope linearly at 101 points and integrates with the
    trapezoid rule. With 36 labels of one class that is 0.003 here on mAP50-95 and on mAP50; both match
    boxes greedily by confidence. The tolerance, 0.02, leaves room for other data, not for other boxes.
    """
    from ultralytics import RTDETR

    ds = self_labelled(tmp_path / "ds", spread_rtdetr_pt)
    detector = _detector(spread_rtdetr_pt)
    items = discover_images([str(ds.images)])
    labels = load_labels(items, data_yaml=ds.data_yaml)
    c = run_comparison(
        [detector, detector], image_frames(items), CompareSettings(imgsz=SMALL_IMGSZ, warmup=0), labels
    )
    ours = c.models[0].accuracy
    assert ours is not None and ours.instances == 36 and len(ours.per_class) == 80
    val = RTDETR(str(spread_rtdetr_pt)).val(
        data=str(ds.data_yaml),
        imgsz=SMALL_IMGSZ,
        batch=6,
        workers=0,
        device="cpu",
        plots=False,
        verbose=False,
        project=str(tmp_path / "val"),
        name="val",
    )
    assert 0.1 < val.box.map < val.box.map50 < 0.9, "a case where the numbers mean something"
    assert ours.map50_95 == pytest.approx(val.box.map, abs=0.02)
    assert ours.map50 == pytest.approx(val.box.map50, abs=0.02)


def test_evaluation_uses_the_images_every_model_read(tmp_path: Path, rtdetr_pt: Path) -> None:
    ds = tiny_dataset(tmp_path / "ds")
    (ds.images / "b.jpg").write_bytes(b"broken")  # unreadable: no labels, and recorded as failed
    detector = _detector(rtdetr_pt)
    detector.names = dict(enumerate(["cat", "dog", "bird"]))  # its classes renamed to match the labels
    items = discover_images([str(ds.images)])
    labels = load_labels(items, data_yaml=ds.data_yaml)
    c = run_comparison(
        [detector, detector], image_frames(items), CompareSettings(imgsz=SMALL_IMGSZ, warmup=0), labels
    )
    assert [src for src, _ in c.failed] == [str(ds.images / "b.jpg")]
    assert c.models[0].accuracy is not None and c.models[0].accuracy.images == 3
    assert c.models[0].images_failed == 1 and c.models[0].images_ok == 3


def test_detections_to_coco_maps_class_names() -> None:
    rows = detections_to_coco([det("Car", 0.5, BOX), det("cat", 0.4, BOX)], 7, {"car": 3})
    assert rows.tolist() == [[7, 10, 10, 40, 40, 0.5, 3]]
