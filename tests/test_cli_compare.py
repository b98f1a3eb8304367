"""`detect compare` as users meet it: the report files, --json, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from conftest import SMALL_IMGSZ, fake_cli_argv, fake_cli_env, make_image, make_video, read_video
from labeled_data import TINY_BOXES, tiny_dataset, write_dataset
from test_compare_report import external_refs
from typer.testing import CliRunner

from detect_cli.cli import app
from detect_cli.compare.analysis import WHOLE_ANALYSIS
from detect_cli.render import title_band_height
from detect_cli.video import pick_codec
from detect_cli.writers import read_jsonl

runner = CliRunner()


def compare_args(rtdetr_pt: Path, yolo_pt: Path, *args: str) -> list[str]:
    return [
        "compare",
        *args,
        "-m",
        f"{rtdetr_pt},{yolo_pt}",
        "--imgsz",
        str(SMALL_IMGSZ),
        "--device",
        "cpu",
        "--conf",
        "1e-6",  # random-init YOLO11 scores about 1e-5
        "--max-det",
        "5",
        "--warmup",
        "1",
        "--no-memory",  # a child process per model: measured once, in labelled_run
    ]


@pytest.fixture(scope="module")
def labelled_run(rtdetr_pt: Path, yolo_pt: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One labelled comparison (class names '0', '1', '2', which the seeded models share), run once."""
    root = tmp_path_factory.mktemp("cli-compare")
    ds = write_dataset(root / "ds", TINY_BOXES, ["0", "1", "2"])
    out = root / "out"
    result = runner.invoke(
        app,
        [
            *compare_args(rtdetr_pt, yolo_pt, str(ds.images), "--data", str(ds.data_yaml)),
            "--memory",
            "-o",
            str(out),
        ],
    )
    return result, out, ds


def test_every_report_file_exists_and_parses(labelled_run) -> None:  # type: ignore[no-untyped-def]
    result, out, _ = labelled_run
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert [m["info"]["label"] for m in report["models"]] == ["rtdetr-l-seed0", "yolo11n-seed0"]
    for m in report["models"]:
        assert m["speed"]["calls"] == 20 and m["speed"]["latency_p50_ms"] > 0  # --runs raised to 5 for a p95
        assert m["info"]["params_m"] > 1 and m["info"]["device"] == "cpu" and m["info"]["precision"] == "fp32"
        assert m["accuracy"]["images"] == 4 and m["accuracy"]["instances"] == 6
        assert 0 <= m["accuracy"]["map50_95"] <= 1 and m["detections"] == 20  # --max-det 5, 4 images
    [pair] = report["pairs"]
    assert pair["images"] == 4 and pair["overall"]["matched"] + pair["overall"]["only_a"] == 20
    md = (out / "report.md").read_text()
    assert all(f"## {t}" in md for t in ("Speed", "Accuracy", "Agreement", "Accuracy per class"))
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    # Only links to the full pictures beside the report; every picture shown is embedded.
    assert all(r.startswith("side-by-side/") for r in external_refs(page))
    # overview, speed, memory, accuracy, detections, operating points
    assert page.count("data:image/png;base64,") == 6
    # The gallery: every side-by-side as a thumbnail, and each input itself for the viewer
    assert page.count('class="thumb"') == 4 and page.count("data:image/jpeg;base64,") == 4 + 4
    assert page.index("Verdict") < page.index("<h2>Speed</h2>") and "<h2>Environment</h2>" in page
    for m in report["models"]:  # each model measured alone, on the first 3 images
        assert m["memory"]["method"] == "rss" and m["memory"]["images"] == 3 and m["memory"]["peak_mb"] > 1
        assert m["info"]["input_shape"] and m["info"]["ran"]
    assert report["environment"]["versions"]["torch"] and report["environment"]["cpu_count"] >= 1
    [sentence] = [p["sentence"] for p in report["verdict"]["pairs"]]
    assert "faster" in sentence and "on your 4 images" in sentence and "memory" in sentence
    assert "| 0 |" in md and " P | " in md  # per-class precision and recall in report.md
    for name in ("speed.png", "accuracy_vs_speed.png", "detections_per_class.png"):
        assert cv2.imread(str(out / "plots" / name)) is not None, name
    for label in ("rtdetr-l-seed0", "yolo11n-seed0"):
        rows = read_jsonl(out / "detections" / f"{label}.jsonl")
        assert len(rows) == 4 and all(len(r["detections"]) == 5 for r in rows)
    side = cv2.imread(str(out / "side-by-side" / "val" / "a.jpg"))
    band = title_band_height(128)
    assert side.shape == (band + 96, 2 * 128, 3), "the two renders of a 128 px wide image, titles above"
    assert "Speed" in result.stderr and "Accuracy" in result.stderr and "report.html" in result.stderr


def test_json_prints_the_report(rtdetr_pt: Path, yolo_pt: Path, images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app, [*compare_args(rtdetr_pt, yolo_pt, str(images / "a")), "-o", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads((out / "report.json").read_text())
    assert json.loads(result.stdout)["models"][0]["accuracy"] is None


def test_a_model_compared_with_itself(rtdetr_pt: Path, images: Path, tmp_path: Path) -> None:
    argv = ["compare", str(images), "-m", f"{rtdetr_pt},{rtdetr_pt}", "--imgsz", "64", "--conf", "0.01"]
    result = runner.invoke(
        app, [*argv, "--warmup", "0", "--no-save", "--no-memory", "-q", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    [pair] = json.loads((tmp_path / "o" / "report.json").read_text())["pairs"]
    assert pair["overall"]["agreement"] == 1.0 and pair["overall"]["mean_iou"] == 1.0
    assert not (tmp_path / "o" / "side-by-side").exists()


def test_failed_inputs_exit_1_and_are_listed(
    fake_models: dict[str, Path], images: Path, tmp_path: Path
) -> None:
    (images / "broken.jpg").write_text("not a picture")
    argv = compare_args(fake_models["rtdetr"], fake_models["yolo"], str(images))
    result = runner.invoke(app, [*argv, "-o", str(tmp_path / "o")])
    assert result.exit_code == 1, result.output
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["failed"] == [{"source": str(images / "broken.jpg"), "error": "not a readable image"}]
    assert report["models"][0]["speed"]["calls"] == 16  # 4 pictures read, --runs raised to 4 (5 inputs)


def test_a_video_source(rtdetr_pt: Path, yolo_pt: Path, tmp_path: Path) -> None:
    clip = make_video(tmp_path / "street.mp4", frames=10, fps=10)
    out = tmp_path / "o"
    argv = [*compare_args(rtdetr_pt, yolo_pt, str(clip)), "--vid-stride", "3", "-o", str(out), "--json"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == json.loads((out / "report.json").read_text())
    assert report["inputs"] == 4 and report["video"]["vid_stride"] == 3  # frames 0, 3, 6, 9
    assert [m["speed"]["calls"] for m in report["models"]] == [20, 20] and report["pairs"][0]["images"] == 4
    assert all(m["accuracy"] is None for m in report["models"])
    video = out / "side-by-side" / f"street{pick_codec().suffix}"
    assert report["video"]["side_by_side"] == [video.relative_to(out).as_posix()]
    frames, width, height, fps = read_video(video)
    assert (frames, width, height) == (4, 2 * 128, title_band_height(128) + 96)
    assert fps == pytest.approx(10 / 3, abs=0.01)
    assert "## Agreement" in (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    assert all(r.startswith("side-by-side/") for r in external_refs(page))  # the video, full pictures
    poster = pick_codec().name == "H.264"  # a browser-playable video has a poster frame, embedded
    assert page.count("data:image/jpeg;base64,") == 4 + 4 + poster  # thumbnails, the viewer's frames
    assert f"Side-by-side video: {video}" in result.stderr


def test_ctrl_c_on_a_video_keeps_a_playable_video_and_a_report(
    fake_models: dict[str, Path], tmp_path: Path
) -> None:
    """In a real process, on the fake detector (0.02 s a frame, so the run is still going when signalled)."""
    clip = make_video(tmp_path / "long.mp4", frames=150)
    out = tmp_path / "o"
    argv = [*compare_args(fake_models["rtdetr"], fake_models["yolo"], str(clip)), "-o", str(out)]
    proc = subprocess.Popen(
        fake_cli_argv(*argv), stderr=subprocess.PIPE, text=True, env=fake_cli_env(delay=0.02)
    )
    done = out / "detections" / "yolo11n-seed0.jsonl"
    deadline = time.monotonic() + 120
    while not (done.exists() and len(done.read_text().splitlines()) >= 3):  # the run is under way
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it was interrupted"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    n = report["inputs"]
    assert report["interrupted"] and 3 <= n < 150, "the frames done before Ctrl-C, and only those"
    assert [m["speed"]["calls"] for m in report["models"]] == [n, n] and report["pairs"][0]["images"] == n
    for label in ("rtdetr-l-seed0", "yolo11n-seed0"):
        assert [r["frame"] for r in read_jsonl(out / "detections" / f"{label}.jsonl")] == list(range(n))
    assert read_video(out / report["video"]["side_by_side"][0])[:3] == (n, 256, title_band_height(128) + 96)
    assert "Interrupted" in stderr and "Traceback" not in stderr and not list(out.rglob("*.part*"))


def test_existing_report_needs_exist_ok(fake_models: dict[str, Path], images: Path, tmp_path: Path) -> None:
    models = compare_args(fake_models["rtdetr"], fake_models["yolo"], str(images / "top.png"))
    argv = [*models, "-o", str(tmp_path / "o"), "-q"]
    assert runner.invoke(app, argv).exit_code == 0
    again = runner.invoke(app, argv)
    assert again.exit_code == 2 and "--exist-ok" in again.stderr
    assert runner.invoke(app, [*argv, "--exist-ok"]).exit_code == 0


def _stray_image(tmp_path: Path) -> list[str]:
    ds = tiny_dataset(tmp_path / "ds")
    return [str(ds.images), str(make_image(tmp_path / "other" / "x.jpg")), "--data", str(ds.data_yaml)]


def _no_shared_names(tmp_path: Path) -> list[str]:
    from labeled_data import TINY_BOXES, write_dataset

    # rtdetr-l.yaml and yolo11n.yaml are named as the official models: COCO's 80 classes, none of these
    ds = write_dataset(tmp_path / "ds", TINY_BOXES, ("gizmo", "widget", "sprocket"))
    return [str(ds.images), "--coco", str(ds.coco_json)]


def _not_a_video(tmp_path: Path) -> list[str]:
    (tmp_path / "x.mp4").write_text("not a video")
    return [str(tmp_path / "x.mp4")]


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda p: [str(p / "nothing")], "no inputs found"),
        (lambda p: [str(make_image(p / "x.jpg")), "-m", "rtdetr-l.yaml,yolo99"], "unknown model 'yolo99'"),
        (lambda p: [str(make_image(p / "x.jpg")), "-m", "rtdetr-l.yaml"], "needs at least two models"),
        (
            lambda p: [str(make_image(p / "x.jpg")), "-m", "rtdetr-l,yolo11n"],
            "cannot get weights for rtdetr-l",
        ),
        (lambda p: [str(make_image(p / "x.jpg")), "--imgsz", "100"], "not a multiple of 32"),
        (_stray_image, "labels do not match the images: 1 of 5 images have no YOLO labels folder"),
        (_no_shared_names, "share no class names with the models"),
        (
            lambda p: [
                str(make_video(p / "c.mp4", frames=2)),
                "--data",
                str(tiny_dataset(p / "ds").data_yaml),
            ],
            "--data gives labels for images; a video source has none",
        ),
        (
            lambda p: [
                str(make_video(p / "c.mp4", frames=2)),
                "--coco",
                str(tiny_dataset(p / "ds").coco_json),
            ],
            "--coco gives labels for images; a video source has none",
        ),
        (
            lambda p: [str(make_video(p / "c.mp4", frames=2)), str(make_image(p / "x.jpg"))],
            "compare takes images or videos, not both in one run",
        ),
        (lambda p: [str(p / "nothing.mp4")], "no inputs found"),
        (_not_a_video, "not a readable video"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, make_args, message: str) -> None:  # type: ignore[no-untyped-def]
    args = make_args(tmp_path)
    if "-m" not in args:
        args += ["-m", "rtdetr-l.yaml,yolo11n.yaml"]
    if "--imgsz" not in args:
        args += ["--imgsz", "64"]
    result = runner.invoke(app, ["compare", *args, "-o", str(tmp_path / "out")], terminal_width=300)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.output


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\nfrom detect_cli.cli import app\n"
        "try:\n    app(['compare', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('torch', 'ultralytics', 'cv2', 'matplotlib') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stdout and "--data" in proc.stdout, proc.stdout[-800:] + proc.stderr[-500:]


def test_explain_adds_where_each_model_looked(
    rtdetr_pt: Path, yolo_pt: Path, images: Path, tmp_path: Path
) -> None:
    """--explain N: the first N images explained into explain/ (RT-DETR's attention beside YOLO's map),
    embedded in report.html and linked from report.md."""
    out = tmp_path / "out"
    argv = compare_args(rtdetr_pt, yolo_pt, str(images / "a" / "x.jpg"), str(images / "top.png"))
    result = runner.invoke(app, [*argv, "--explain", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    records = read_jsonl(out / "explain" / "explain.jsonl")
    assert len(records) == 1 and records[0]["source"] == str(images / "a" / "x.jpg")
    picture = out / "explain" / records[0]["picture"]
    assert picture.is_file()
    page = (out / "report.html").read_text()
    assert "Where each model looked" in page and page.count("data:image/jpeg;base64,") >= 1
    assert f"explain/{picture.name}" in (out / "report.md").read_text()


def test_trained_pair_on_one_picture_has_no_interval_and_says_so(tmp_path: Path) -> None:
    from test_compare_analysis import compare_trained

    result, _ = compare_trained(tmp_path, 1)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "one picture: no interval" in result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    [pair] = report["analysis"]["pairs"]
    assert pair["map50_95"]["low"] is None and pair["map50_95"]["note"] == "one picture: no interval"
    assert (
        not report["verdict"]["pairs"][0]["map_settled"] and "one picture" in report["analysis"]["notes"][0]
    )


def test_trained_pair_with_labels_that_share_no_class_is_one_line_and_exit_2(tmp_path: Path) -> None:
    from test_compare_analysis import COCO_JSON, compare_trained

    labels = json.loads(COCO_JSON.read_text())
    for k, c in enumerate(labels["categories"]):
        c["name"] = f"zebra{k}"
    (tmp_path / "zebras.json").write_text(json.dumps(labels))
    result, evidence = compare_trained(tmp_path, 2, tmp_path / "zebras.json")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "share no class names" in errors[0], result.stderr
    assert "Traceback" not in result.output and evidence == []


def test_a_report_past_the_file_size_limit_ends_in_one_error_line(
    fake_models: dict[str, Path], images: Path, tmp_path: Path
) -> None:
    """A real write failure at the end: a child whose files may not grow past 150 kB (RLIMIT_FSIZE,
    SIGXFSZ ignored, so write() fails with EFBIG as on a full disk). Every file of the run is smaller
    than that except report.html (plots and pictures embedded): exit 2, one `error:` line naming it and
    saying where the measurements are, and those are complete."""
    import resource

    limit = 150_000

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = tmp_path / "o"
    argv = [*compare_args(fake_models["rtdetr"], fake_models["yolo"], str(images)), "-o", str(out), "-q"]
    proc = subprocess.run(
        fake_cli_argv(*argv),
        capture_output=True,
        text=True,
        env=fake_cli_env(),
        preexec_fn=small_files,
        timeout=120,
    )
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-2000:]
    assert errors[0] == (
        f"error: cannot write {out / 'report.html'}: File too large; the report is incomplete (the "
        f"measurements are in {out / 'detections'}, one JSONL file per model)"
    )
    assert "unexpected" not in proc.stderr and "Traceback" not in proc.stderr
    for label in ("rtdetr-l-seed0", "yolo11n-seed0"):
        assert len(read_jsonl(out / "detections" / f"{label}.jsonl")) == 4
    assert not (out / "report.html").exists() and not list(out.rglob("*.part"))
    listed = {json.loads(line) for line in (out / ".compare-files.jsonl").read_text().splitlines()}
    written = {p.relative_to(out).as_posix() for p in [*out.glob("report.*"), *out.glob("plots/*.png")]}
    assert written and written <= listed  # each listed before it was written: --exist-ok removes them


def _trained_compare(out: Path, images: Path, *args: str) -> subprocess.Popen[str]:
    """A real `detect compare` of the trained pair on `images`, its stderr piped; `args` added."""
    from trained_pair import IMGSZ, RTDETR_PT, YOLO_PT

    argv = [sys.executable, "-m", "detect_cli", "compare", str(images), "-m", f"{RTDETR_PT},{YOLO_PT}"]
    argv += ["--imgsz", str(IMGSZ), "--device", "cpu", "--no-save", "-o", str(out), *args]
    env = {**fake_cli_env(), "COLUMNS": "200"}
    return subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def _read_until(proc: subprocess.Popen[str], text: str) -> list[str]:
    """The stderr lines of `proc` up to the first that holds `text` (the phase a test signals in)."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if text in line:
            return seen
    proc.wait()
    pytest.fail(f"the run ended before it said {text!r}: " + "".join(seen)[-2000:])


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_to_the_process_group_while_measuring_memory_writes_the_report(
    tmp_path: Path, presses: int
) -> None:
    """A terminal's Ctrl-C reaches the whole process group, the memory child included: the child does
    not die of it. One press: the measurement in hand finishes, the next one is left out. Two: the one
    in hand stops too. The report is written either way and says what was left out; exit 130."""
    from trained_pair import VAL_IMAGES

    images = tmp_path / "images"  # a few pictures: the memory step comes after them all the same
    images.mkdir()
    for picture in sorted(VAL_IMAGES.iterdir())[:3]:
        (images / picture.name).write_bytes(picture.read_bytes())
    out = tmp_path / "o"
    proc = _trained_compare(out, images, "--warmup", "0")
    seen = _read_until(proc, "measuring rtdetr")
    time.sleep(1.0)  # the child is up, importing torch
    for _ in range(presses):
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.05)
    stderr = "".join(seen) + proc.communicate(timeout=300)[1]
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "error:" not in stderr, stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["interrupted"] and report["inputs"] == 3
    rtdetr, yolo = (m["memory"] for m in report["models"])
    assert yolo is None
    if presses == 1:  # the measurement in hand finished, and the line said so
        note = "finishing the measurement of the peak memory of rtdetr-shapes, leaving out the rest, then"
        assert note in stderr
        assert rtdetr["peak_mb"] > 0
        assert report["cut_short"] == ["the peak memory of yolo-shapes", WHOLE_ANALYSIS]
    else:
        assert rtdetr is None
        assert report["cut_short"][:2] == [
            "the peak memory of rtdetr-shapes",
            "the peak memory of yolo-shapes",
        ]
    said = "left out " + "; ".join(report["cut_short"])
    assert said in (out / "report.md").read_text() and said in stderr.replace("\n", " ")


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_while_analysing_writes_a_report_that_says_what_it_left_out(
    tmp_path: Path, presses: int
) -> None:
    """A real SIGINT to a real process once it says it is analysing (the trained pair on its 60 labelled
    pictures: the analysis takes seconds). One press: the steps not begun are left out, report.json and
    the pages say which and that the run was interrupted, exit 130. Two: what was in hand (a step of the
    analysis, a plot) stops at once, and the report is still written, saying so; exit 130."""
    from trained_pair import DATA_YAML, VAL_IMAGES

    out = tmp_path / "o"
    proc = _trained_compare(out, VAL_IMAGES, "--data", str(DATA_YAML), "--no-memory")
    seen = _read_until(proc, "analysing:")
    for _ in range(presses):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    stderr = "".join(seen) + proc.communicate(timeout=300)[1]
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and not list(out.rglob("*.part*"))
    report = json.loads((out / "report.json").read_text())
    assert report["interrupted"] and report["inputs"] == 60
    assert "stopping: finishing the analysis step in hand, leaving out the others" in stderr
    left_out = report["cut_short"]
    assert left_out, "an interrupted analysis names what it left out"
    if report["analysis"] is None:  # a second press stopped it at once
        assert presses == 2 and left_out[0] == WHOLE_ANALYSIS
    if report["analysis"] is not None:
        assert report["analysis"]["cut_short"] == left_out[: len(report["analysis"]["cut_short"])]
    said = "stopped after every image was compared: left out " + "; ".join(left_out)
    assert said in (out / "report.md").read_text() and said in stderr.replace("\n", " ")
