from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pytest

from detect_cli.results import Detection, ImageResult, Speed
from detect_cli.writers import (
    AnnotatedImageWriter,
    CocoWriter,
    CsvWriter,
    JsonlWriter,
    YoloTxtWriter,
    read_jsonl,
)

IMAGE = np.full((50, 100, 3), 127, np.uint8)
DETS = (
    Detection(0, "person", 0.9, (10.0, 5.0, 30.0, 45.0)),
    Detection(2, "car", 0.4, (50.0, 10.0, 100.0, 50.0)),
)
OK = ImageResult("in/000000000139.jpg", "m", 100, 50, Speed(1, 2, 3), DETS)
EMPTY = ImageResult("in/b.jpg", "m", 100, 50, Speed(1, 2, 3), ())
BAD = ImageResult("in/c.jpg", "m", error="not a readable image")


def _write_all(sink, rels=("a/x.jpg", "b.jpg", "c.jpg")) -> None:  # type: ignore[no-untyped-def]
    with sink:
        for result, rel in zip((OK, EMPTY, BAD), rels, strict=True):
            sink.write(result, PurePosixPath(rel), IMAGE if result.ok else None)


def test_jsonl_one_line_per_input_and_echo(tmp_path: Path) -> None:
    echoed: list[str] = []
    _write_all(JsonlWriter(tmp_path / "r.jsonl", echo=echoed.append))
    rows = read_jsonl(tmp_path / "r.jsonl")
    assert [r["source"] for r in rows] == ["in/000000000139.jpg", "in/b.jpg", "in/c.jpg"]
    assert rows[2]["error"] == "not a readable image" and rows[0]["error"] is None
    assert [json.loads(x) for x in echoed] == rows


def test_jsonl_reader_skips_a_line_cut_short(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text('{"source": "a", "model": "m"}\n{"source": "b"')
    assert read_jsonl(p) == [{"source": "a", "model": "m"}]


def test_csv_row_per_detection_and_per_empty_or_failed_input(tmp_path: Path) -> None:
    _write_all(CsvWriter(tmp_path / "r.csv"))
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [(r["source"], r["class_name"], r["error"]) for r in rows] == [
        ("in/000000000139.jpg", "person", ""),
        ("in/000000000139.jpg", "car", ""),
        ("in/b.jpg", "", ""),
        ("in/c.jpg", "", "not a readable image"),
    ]
    assert [float(rows[0][k]) for k in ("x1", "y1", "x2", "y2")] == [10, 5, 30, 45]


def test_yolo_labels_are_normalised(tmp_path: Path) -> None:
    _write_all(YoloTxtWriter(tmp_path / "labels"))
    lines = (tmp_path / "labels" / "a" / "x.txt").read_text().splitlines()
    assert [[float(v) for v in line.split()] for line in lines] == [
        [0, 0.2, 0.5, 0.2, 0.8, 0.9],
        [2, 0.75, 0.6, 0.5, 0.8, 0.4],
    ]
    assert (tmp_path / "labels" / "b.txt").read_text() == ""  # processed, nothing found
    assert not (tmp_path / "labels" / "c.txt").exists()  # failed: no label file


def test_coco_results_load_in_pycocotools(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    from detect_cli.models import is_coco80

    names = {i: f"c{i}" for i in range(80)} | {0: "person", 79: "toothbrush"}
    assert is_coco80(names)
    _write_all(CocoWriter(tmp_path / "coco.json", names))
    data = json.loads((tmp_path / "coco.json").read_text())
    assert data[0] == {
        "image_id": 139,
        "category_id": 1,
        "bbox": [10.0, 5.0, 20.0, 40.0],
        "score": 0.9,
        "file_name": "in/000000000139.jpg",
    }
    assert data[1]["category_id"] == 3  # coco80 id 2 (car) is COCO's category 3
    gt = COCO()
    gt.dataset = {
        "images": [{"id": 139, "width": 100, "height": 50}],
        "annotations": [],
        "categories": [{"id": i} for i in range(1, 91)],
    }
    gt.createIndex()
    assert len(gt.loadRes(str(tmp_path / "coco.json")).anns) == 2


def test_coco_keeps_class_ids_for_other_models(tmp_path: Path) -> None:
    _write_all(CocoWriter(tmp_path / "coco.json", {0: "a", 1: "b", 2: "c"}))
    assert [d["category_id"] for d in json.loads((tmp_path / "coco.json").read_text())] == [0, 2]


def test_coco_with_no_detections_is_an_empty_list(tmp_path: Path) -> None:
    with CocoWriter(tmp_path / "coco.json", {0: "a"}) as sink:
        sink.write(EMPTY, PurePosixPath("b.jpg"), IMAGE)
    assert json.loads((tmp_path / "coco.json").read_text()) == []


def test_annotated_images_mirror_paths_and_keep_format(tmp_path: Path) -> None:
    _write_all(AnnotatedImageWriter(tmp_path), rels=("a/x.jpg", "b.png", "c.jpg"))
    drawn = cv2.imread(str(tmp_path / "a" / "x.jpg"))
    assert drawn.shape == IMAGE.shape and not np.array_equal(drawn, IMAGE)
    assert cv2.imread(str(tmp_path / "b.png")).shape == IMAGE.shape
    assert not (tmp_path / "c.jpg").exists()
    assert not list(tmp_path.rglob("*.part")), "no temporary file is left behind"


def test_csv_for_videos_names_frame_and_time(tmp_path: Path) -> None:
    frame = ImageResult("clip.mp4", "m", 100, 50, Speed(1, 2, 3), DETS, frame=7, time_s=0.7)
    with CsvWriter(tmp_path / "results.csv", frames=True) as sink:
        sink.write(frame, PurePosixPath("clip/000007.jpg"), IMAGE)
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [(r["source"], r["frame"], r["time_s"], r["class_name"]) for r in rows] == [
        ("clip.mp4", "7", "0.7000", "person"),
        ("clip.mp4", "7", "0.7000", "car"),
    ]


def test_atomic_writes_follow_the_umask(tmp_path: Path) -> None:
    import os

    from detect_cli.writers import atomic_write_bytes

    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a" / "f.bin", b"data")
    finally:
        os.umask(old)
    assert (tmp_path / "a" / "f.bin").read_bytes() == b"data"
    assert (tmp_path / "a" / "f.bin").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["f.bin"]


def test_an_output_that_cannot_be_written_fails_that_input_only(tmp_path: Path) -> None:
    """A file name the file system refuses (too long) is that input's failure record; the run's record
    goes on, and the next input is written."""
    from detect_cli.writers import SinkGroup

    group = SinkGroup([AnnotatedImageWriter(tmp_path)], [JsonlWriter(tmp_path / "results.jsonl")])
    with group:
        group.write(OK, PurePosixPath("x" * 300 + ".jpg"), IMAGE)  # ENAMETOOLONG
        group.write(EMPTY, PurePosixPath("b.jpg"), IMAGE)
    rows = read_jsonl(tmp_path / "results.jsonl")
    assert [r["source"] for r in rows] == [OK.source, EMPTY.source]
    assert rows[0]["error"].startswith("cannot write its outputs") and rows[0]["detections"] == []
    assert rows[1]["error"] is None and (tmp_path / "b.jpg").is_file()
    [(inferred, recorded)] = group.failures()
    assert inferred == OK and recorded.error == rows[0]["error"]


def test_jsonl_keeps_a_non_utf8_file_name_exactly(tmp_path: Path) -> None:
    import os

    name = os.fsdecode(b"/photos/caf\xe9.jpg")  # what os.listdir gives for a Latin-1 name
    with JsonlWriter(tmp_path / "results.jsonl") as sink:
        sink.write(ImageResult(name, "m", path=name), PurePosixPath("x.jpg"), None)
    text = (tmp_path / "results.jsonl").read_text(encoding="utf-8")  # valid UTF-8
    assert "\\udce9" in text
    assert os.fsencode(json.loads(text)["path"]) == b"/photos/caf\xe9.jpg"


def test_appending_repairs_a_cut_last_line(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text('{"source": "a", "model": "m"}\n{"source": "cu')
    with JsonlWriter(path) as sink:
        sink.write(EMPTY, PurePosixPath("b.jpg"), None)
    lines = path.read_text().splitlines()
    assert [json.loads(line)["source"] for line in lines] == ["a", EMPTY.source]


def test_tables_on_a_full_disk_fail_in_one_line_and_leave_no_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/dev/full fails every write with ENOSPC: the same error a full disk gives."""
    import os

    from detect_cli.errors import OutputError
    from detect_cli.writers import sinks, write_tables

    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    with JsonlWriter(tmp_path / "results.jsonl") as sink:
        for i in range(200):
            sink.write(OK, PurePosixPath(f"{i}.jpg"), None)
    # The part file opened on /dev/full (a link planted at its name would be removed, not followed).
    monkeypatch.setattr(sinks, "open_new", lambda path: os.open("/dev/full", os.O_WRONLY))
    with pytest.raises(OutputError, match="No space left on device") as e:
        write_tables(tmp_path, ["csv"], {0: "person", 2: "car"})
    assert "\n" not in str(e.value) and "--resume" in str(e.value)
    assert not (tmp_path / "results.csv").exists()
    assert not list(tmp_path.glob(".*.part")), "the temporary file is removed"


def test_a_record_deleted_under_the_run_stops_it_in_one_line(tmp_path: Path) -> None:
    """The output folder removed mid-run: records written on would be lost, so the run stops."""
    import shutil

    from detect_cli.errors import OutputError

    out = tmp_path / "run"
    out.mkdir()
    with JsonlWriter(out / "results.jsonl") as sink:
        sink.write(OK, PurePosixPath("a.jpg"), None)
        shutil.rmtree(out)
        with pytest.raises(OutputError, match="was deleted while the run wrote it"):
            sink.write(EMPTY, PurePosixPath("b.jpg"), None)


@pytest.mark.parametrize("table", ["csv", "coco"])
def test_a_link_planted_at_a_part_name_is_replaced_not_written_through(table: str, tmp_path: Path) -> None:
    """`.results.csv.part` made a symlink to an input (or to anything): the table is written to a new
    file in its place, and the file the link pointed to is byte-identical afterwards."""
    from detect_cli.writers import TABLES, write_tables

    victim = tmp_path / "photos" / "cat.jpg"
    victim.parent.mkdir()
    victim.write_bytes(b"\xff\xd8 the user's picture \xff\xd9")
    before = victim.read_bytes()
    with JsonlWriter(tmp_path / "results.jsonl") as sink:
        sink.write(OK, PurePosixPath("x.jpg"), None)
    part = tmp_path / f".{TABLES[table]}.part"
    part.symlink_to(victim)
    write_tables(tmp_path, [table], {0: "person", 2: "car"})
    assert victim.read_bytes() == before
    assert not part.is_symlink() and not part.exists()
    assert "person" in (tmp_path / TABLES[table]).read_text() or table == "coco"
    assert (tmp_path / TABLES[table]).stat().st_nlink == 1 and not (tmp_path / TABLES[table]).is_symlink()


def test_a_link_planted_at_a_videos_part_name_is_not_written_through(tmp_path: Path) -> None:
    from detect_cli.video import pick_codec
    from detect_cli.writers import AnnotatedVideoWriter

    codec = pick_codec()
    victim = tmp_path / "clip.bin"
    victim.write_bytes(b"the user's video")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / f".v.part{codec.suffix}").symlink_to(victim)
    with AnnotatedVideoWriter(tmp_path / "out", {"v.mp4": 5.0}, codec) as sink:
        for i in range(2):
            sink.write(ImageResult("v.mp4", "m", 100, 50), PurePosixPath("v", f"{i:06d}.jpg"), IMAGE)
    assert victim.read_bytes() == b"the user's video"
    assert sink.written == [tmp_path / "out" / f"v{codec.suffix}"] and not sink.problems


def test_compaction_does_not_write_through_a_planted_link(tmp_path: Path) -> None:
    from detect_cli.resume import compact

    victim = tmp_path / "input.jpg"
    victim.write_bytes(b"picture")
    record = tmp_path / "results.jsonl"
    record.write_text('{"source": "a", "model": "m"}\n{"source": "a", "model": "m", "error": null}\n')
    (tmp_path / ".results.jsonl.compact.part").symlink_to(victim)
    assert compact(record) == 1
    assert victim.read_bytes() == b"picture" and len(read_jsonl(record)) == 1


@pytest.mark.parametrize(
    ("inputs", "names"),
    [
        (["a/x.jpg", "b.png"], ["a/x.jpg", "b.png"]),  # no clash: the input's own path
        (["x.jpg", "x.png", "z.jpg"], ["x.jpg.jpg", "x.png.png", "z.jpg"]),  # labels x.jpg.txt, x.png.txt
        (["y.jpg", "Y.JPG"], ["y-2.jpg.jpg", "Y.JPG.JPG"]),  # one name on a case-insensitive disk
        (["A/x.jpg", "a/x.jpg"], ["A/x.jpg.jpg", "a/x-2.jpg.jpg"]),  # folders that differ by case only
        (["x.jpg", "x.png", "x.jpg.png"], ["x-2.jpg.jpg", "x.png.png", "x.jpg.png"]),  # a kept suffix taken
        (["Y.JPG", "y.jpg", "y-2.jpg"], ["Y.JPG.JPG", "y-2.jpg.jpg", "y-2.jpg"]),
        (["a.png", "a.txt/x.png"], ["a.png.png", "a.txt/x.png"]),  # labels a.txt was a folder of labels
        (["a.png", "A.JPG/x.png"], ["a.png.png", "A.JPG/x.png"]),  # compare's side-by-side a.jpg, likewise
    ],
)
def test_output_names_are_unique_per_run_whatever_the_order(inputs: list[str], names: list[str]) -> None:
    import itertools

    from detect_cli.sources import output_file, output_names

    rels = [PurePosixPath(p) for p in inputs]
    assert [str(n) for n in output_names(rels)] == names
    for order in itertools.permutations(range(len(rels))):  # the set decides, not the order given
        assert [str(n) for n in output_names([rels[i] for i in order])] == [names[i] for i in order]
    folders = {str(d).casefold() for n in output_names(rels) for d in n.parents}
    for suffix in (".txt", ".jpg", ".png"):  # every kind of output: one file per input, and no folder
        files = {str(output_file(n, suffix)).casefold() for n in output_names(rels)}
        assert len(files) == len(rels) and not files & folders


def test_coco_image_ids_are_unique_per_run_and_kept_in_the_records(tmp_path: Path) -> None:
    """a/1.jpg, b/001.jpg and b/1.jpg all read as 1; a file without a number got its position (which a
    name can equal); `²` crashed int(). Each input now has its own id, held by its record; the table
    uses the record's id, and a redone input keeps its id."""
    from detect_cli.writers import FIRST_FREE_ID, write_tables

    sources = ["a/1.jpg", "cat.jpg", "b/001.jpg", "b/1.jpg", "2.jpg", "x/\u00b2.jpg", "y/\u0663.jpg"]
    with JsonlWriter(tmp_path / "results.jsonl") as sink:
        for source in sources:
            sink.write(replace(OK, source=source, path=f"/data/{source}"), PurePosixPath(source), None)
    records = read_jsonl(tmp_path / "results.jsonl")
    ids = {r["source"]: r["image_id"] for r in records}
    assert ids["a/1.jpg"] == 1 and ids["2.jpg"] == 2 and len(set(ids.values())) == len(sources)
    assert {ids[s] for s in ("cat.jpg", "b/001.jpg", "b/1.jpg", "x/\u00b2.jpg", "y/\u0663.jpg")} == set(
        range(FIRST_FREE_ID, FIRST_FREE_ID + 5)
    )
    # A resumed run appends (a redone input, a new one): old ids are kept, new ones stay free.
    with JsonlWriter(tmp_path / "results.jsonl") as sink:
        sink.write(replace(EMPTY, source="b/1.jpg", path="/data/b/1.jpg"), PurePosixPath("b/1.jpg"), None)
        sink.write(replace(OK, source="3.jpg", path="/data/3.jpg"), PurePosixPath("3.jpg"), None)
    again = read_jsonl(tmp_path / "results.jsonl")
    assert again[-2]["image_id"] == ids["b/1.jpg"] and again[-1]["image_id"] == 3
    write_tables(tmp_path, ["coco"], {0: "person", 2: "car"})
    table = json.loads((tmp_path / "coco_results.json").read_text())
    by_file = {d["file_name"]: d["image_id"] for d in table}
    assert by_file == {**{s: ids[s] for s in sources}, "3.jpg": 3}


def test_tables_give_ids_to_records_of_older_versions_past_those_held(tmp_path: Path) -> None:
    from detect_cli.writers import FIRST_FREE_ID, jsonl_line, write_tables

    old = [{**replace(OK, source=s).to_dict()} for s in ("a/7.jpg", "b/7.jpg", "cat.jpg")]
    held = {**replace(OK, source="c/9.jpg").to_dict(), "image_id": 7}
    (tmp_path / "results.jsonl").write_text("".join(jsonl_line(r) + "\n" for r in [*old, held]))
    write_tables(tmp_path, ["coco"], {0: "person", 2: "car"})
    by_file = {
        d["file_name"]: d["image_id"] for d in json.loads((tmp_path / "coco_results.json").read_text())
    }
    assert by_file == {
        "a/7.jpg": FIRST_FREE_ID,
        "b/7.jpg": FIRST_FREE_ID + 1,
        "cat.jpg": FIRST_FREE_ID + 2,
        "c/9.jpg": 7,
    }


def test_a_caption_is_drawn_on_each_annotated_picture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model with random weights says so on every picture it makes (`models.weights_caption`)."""
    from detect_cli import render

    titles: list[str] = []
    real = render.draw_title
    monkeypatch.setattr(render, "draw_title", lambda image, title: titles.append(title) or real(image, title))
    caption = "rtdetr-l: RANDOM WEIGHTS, boxes are meaningless"
    _write_all(AnnotatedImageWriter(tmp_path, caption))
    _write_all(AnnotatedImageWriter(tmp_path / "trained"))
    assert titles == [caption, caption]  # the two pictures written (the third input failed), once each


def test_an_input_whose_suffix_opencv_cannot_encode_is_drawn_as_png(tmp_path: Path) -> None:
    """A picture named 'conf=0.5' (its suffix '.5') or 'shot.jfif': before, OpenCV raised and the input
    failed ('could not find encoder'); now it falls back to PNG, as the writer promises."""
    for name in ("conf=0.5", "shot.jfif"):
        first, fallback = AnnotatedImageWriter.targets(tmp_path, PurePosixPath(name))
        with AnnotatedImageWriter(tmp_path) as sink:
            sink.write(OK, PurePosixPath(name), IMAGE)
        assert fallback.is_file() and not first.exists(), name
