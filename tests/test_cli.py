"""The command line as users meet it: exit codes, output layout, formats, --json purity, messages."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SMALL_IMGSZ, fake_cli_argv, fake_cli_env, make_image
from typer.testing import CliRunner

from detect_cli.cli import app
from detect_cli.writers import read_jsonl

runner = CliRunner()


@pytest.fixture
def detect(fake_models: dict[str, Path], tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run `detect <command> ...` in-process (the fake detector: these tests are about the plumbing);
    returns (result, out)."""
    rtdetr_pt, yolo_pt = fake_models["rtdetr"], fake_models["yolo"]

    def go(
        *args: str, command: tuple[str, ...] = ("image",), model: str | None = None, out: Path | None = None
    ):  # type: ignore[no-untyped-def]
        out = out or tmp_path / "out"
        weights = model or str(yolo_pt if command[0] == "yolo" else rtdetr_pt)
        argv = [
            *command,
            *args,
            "-m",
            weights,
            "--imgsz",
            str(SMALL_IMGSZ),
            "--device",
            "cpu",
            "-o",
            str(out),
        ]
        return runner.invoke(app, argv), out

    return go


def _errors_on_one_line(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_version_and_module_entry_point() -> None:
    from detect_cli import __version__

    assert runner.invoke(app, ["--version"]).stdout.strip() == f"detect {__version__}"
    proc = subprocess.run([sys.executable, "-m", "detect_cli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"detect {__version__}"


@pytest.mark.parametrize("argv", [["--help"], ["image", "--help"], ["yolo", "image", "--help"], ["models"]])
def test_help_and_models_do_not_import_torch(argv: list[str]) -> None:
    code = (
        "import sys\nfrom detect_cli.cli import app\n"
        f"try:\n    app({argv!r})\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('torch', 'ultralytics', 'cv2') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:] + proc.stderr[-500:]


def test_help_explains_rtdetr_iou() -> None:
    out = runner.invoke(app, ["image", "--help"], terminal_width=200).stdout
    assert "NMS-free" in out and "--nms" in out


def test_image_run_writes_every_format(detect, images: Path) -> None:  # type: ignore[no-untyped-def]
    result, out = detect(str(images), "--conf", "0.01", "-f", "csv", "-f", "txt", "-f", "coco")
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out / "results.jsonl")
    assert len(rows) == 4 and all(r["error"] is None for r in rows)
    assert all(r["model"] == "rtdetr-l-seed0" and r["detections"] for r in rows)
    assert {r["width"] for r in rows} == {128} and set(rows[0]["speed_ms"]) == {
        "preprocess",
        "inference",
        "postprocess",
    }
    n_dets = sum(len(r["detections"]) for r in rows)
    assert len(list(csv.DictReader((out / "results.csv").open()))) == n_dets
    labels = sorted(p.relative_to(out / "labels").as_posix() for p in (out / "labels").rglob("*.txt"))
    assert labels == ["imgs/a/x.txt", "imgs/b/x.txt", "imgs/c/d/deep.txt", "imgs/top.txt"]
    assert len(json.loads((out / "coco_results.json").read_text())) == n_dets
    for rel in ("imgs/a/x.jpg", "imgs/b/x.jpg", "imgs/top.png", "imgs/c/d/deep.jpg"):
        assert (out / rel).is_file(), rel
    assert "4 processed, 0 failed" in result.stderr and str(out) in result.stderr


def test_yolo_command_runs_yolo(detect, images: Path) -> None:  # type: ignore[no-untyped-def]
    result, out = detect(
        str(images / "top.png"), "--conf", "1e-6", "--max-det", "3", command=("yolo", "image")
    )
    assert result.exit_code == 0, result.output
    [row] = read_jsonl(out / "results.jsonl")
    assert row["model"] == "yolo11n-seed0" and len(row["detections"]) == 3


def test_no_save_writes_no_images(detect, images: Path) -> None:  # type: ignore[no-untyped-def]
    result, out = detect(str(images / "top.png"), "--no-save")
    assert result.exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [".detect.lock", "results.jsonl"]


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_json_stdout_is_only_result_lines(backend: str, images: Path, tmp_path: Path) -> None:
    """In a real process: ultralytics' own log lines must not reach stdout, on the torch path and on
    the export path (which reaches ultralytics through other modules first)."""
    if backend == "onnx":
        pytest.importorskip("onnxruntime")
    env = {**os.environ, "DETECT_BACKEND": backend, "DETECT_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "detect_cli",
            "image",
            str(images),
            "--json",
            "-m",
            "yolo11.yaml",  # the smallest model to export (this is about stdout, not the model)
            "--imgsz",
            str(SMALL_IMGSZ),
            "-o",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 4 and all(json.loads(line)["source"] for line in lines)
    assert [json.loads(x) for x in lines] == read_jsonl(tmp_path / "out" / "results.jsonl")
    assert {json.loads(x)["backend"] for x in lines} == {backend}
    assert "no model scale passed" in proc.stderr  # ultralytics' chatter went to stderr


def test_bad_inputs_are_recorded_and_the_run_goes_on(detect, images: Path, http_root) -> None:  # type: ignore[no-untyped-def]
    base, www = http_root
    make_image(www / "ok.jpg")
    (images / "zero.jpg").write_bytes(b"")
    (images / "text.png").write_text("I am not a picture")
    cut = make_image(images / "cut.jpg", size=(200, 300)).read_bytes()
    (images / "cut.jpg").write_bytes(cut[: len(cut) // 2])
    sources = [
        str(images),
        str(images / "missing.jpg"),
        f"{base}/ok.jpg",
        f"{base}/nope.jpg",
        f"{base}/slow/ok.jpg",
        "ftp://example.com/a.jpg",
    ]
    result, out = detect(*sources, "--url-timeout", "0.5")
    assert result.exit_code == 1, result.output
    errors = {r["source"]: r["error"] for r in read_jsonl(out / "results.jsonl") if r["error"]}
    assert errors == {
        str(images / "zero.jpg"): "empty file",
        str(images / "text.png"): "not a readable image",
        str(images / "cut.jpg"): "truncated JPEG",
        str(images / "missing.jpg"): "no such file or folder",
        f"{base}/nope.jpg": "HTTP 404 File not found",
        f"{base}/slow/ok.jpg": errors.get(f"{base}/slow/ok.jpg"),
        "ftp://example.com/a.jpg": "unsupported URL scheme 'ftp': only http and https are fetched",
    }
    assert "timed out" in errors[f"{base}/slow/ok.jpg"]
    ok = [r for r in read_jsonl(out / "results.jsonl") if not r["error"]]
    assert len(ok) == 5  # the four good files and the URL
    port = base.rsplit(":", 1)[1]
    assert (out / "urls" / f"127.0.0.1_{port}_ok.jpg").is_file()
    assert "7 failed" in result.stderr and "Traceback" not in result.output


def test_inputs_are_never_modified(detect, images: Path) -> None:  # type: ignore[no-untyped-def]
    def digest() -> dict[str, str]:
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in images.rglob("*") if p.is_file()}

    before = digest()
    result, _ = detect(
        str(images), "-f", "txt", out=images / "inside-out"
    )  # even writing into the input folder
    assert result.exit_code == 0
    after = {k: v for k, v in digest().items() if "inside-out" not in k}
    assert after == before


def test_default_out_is_numbered_never_overwritten(
    fake_models: dict[str, Path], images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    weights = fake_models["rtdetr"]
    argv = ["image", str(images / "top.png"), "-m", str(weights), "--imgsz", str(SMALL_IMGSZ), "-q"]
    for _ in range(2):
        assert runner.invoke(app, argv).exit_code == 0
    assert runner.invoke(app, ["yolo", *argv]).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "detect-runs").iterdir()) == ["image", "image-2", "yolo-image"]


def test_rtdetr_iou_warning(detect, images: Path) -> None:  # type: ignore[no-untyped-def]
    result, _ = detect(str(images / "top.png"), "--iou", "0.5")
    assert result.exit_code == 0
    assert result.stderr.count("is NMS-free") == 1
    result, _ = detect(str(images / "top.png"), "--iou", "0.5", "--nms", out=images.parent / "o2")
    assert "NMS-free" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--conf", "2"], "Invalid value for '--conf'"),
        (["--imgsz", "100"], "not a multiple of 32"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--classes", "unicorn"], "unknown class 'unicorn'"),
        (["--classes", ","], "--classes ',' names no class"),
        (["--classes", ""], "--classes '' names no class"),
        (["--classes", "²"], "unknown class '²'"),  # isdigit() is true, int() refuses it
        (["--classes", "٣"], "unknown class '٣'"),  # an Arabic-Indic 3 is not class 3
        (["--device", "²"], "unknown device '²'"),
        (["--device", "cuda:x"], "unknown device 'cuda:x'"),
        (["--format", "xml"], "Invalid value for '--format'"),
        (["-m", "yolo99"], "unknown model 'yolo99'"),
        (["-m", "rtdetr-l"], "cannot get weights for rtdetr-l"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    images: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    argv = ["image", str(images), "--imgsz", "64", "-o", str(tmp_path / "o"), *args]
    if "-m" not in args:
        argv += ["-m", "rtdetr-l.yaml"]
    result = runner.invoke(app, argv, terminal_width=200)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_model_error_is_one_line_and_debug_shows_traceback(images: Path, tmp_path: Path) -> None:
    argv = ["image", str(images), "-m", "rtdetr-x", "-o", str(tmp_path / "o")]
    plain = runner.invoke(app, argv)
    assert plain.exit_code == 2
    assert len(_errors_on_one_line(plain.stderr)) == 1 and "Traceback" not in plain.stderr
    debug = runner.invoke(app, ["--debug", *argv])
    assert debug.exit_code == 2 and "Traceback" in debug.stderr
    assert not (tmp_path / "o").exists(), "no output folder for a run that never started"


def test_no_inputs_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["image", str(tmp_path / "nothing-here"), "-m", "rtdetr-l.yaml"])
    assert result.exit_code == 2
    assert _errors_on_one_line(result.stderr) == [
        f"error: no inputs found ({tmp_path / 'nothing-here'}: no such file or folder)"
    ]


def test_existing_out_needs_exist_ok(detect, images: Path) -> None:  # type: ignore[no-untyped-def]
    first, out = detect(str(images / "top.png"))
    assert first.exit_code == 0
    again, _ = detect(str(images / "top.png"))
    assert again.exit_code == 2 and "--exist-ok" in again.stderr
    appended, _ = detect(str(images / "top.png"), "--exist-ok")
    assert appended.exit_code == 0 and len(read_jsonl(out / "results.jsonl")) == 2


def test_models_json() -> None:
    result = runner.invoke(app, ["models", "--json"])
    data = json.loads(result.stdout)
    assert {m["name"] for m in data["models"]} >= {"rtdetr-l", "yolo11n"}
    assert data["cache_dir"].endswith("cache")


def _start_batch(weights: Path, folder: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    """`detect image folder --json` in a real process, its results streamed on stdout. The weights are
    the fake detector's (these tests are about signals and records), 0.05 s per picture so that the run
    is still going when it is signalled."""
    return subprocess.Popen(
        fake_cli_argv("image", folder, "--json", "-m", weights, "--imgsz", SMALL_IMGSZ, "-o", out, *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=fake_cli_env(delay=0.05),
    )


def _many(tmp_path: Path, n: int = 40) -> Path:
    folder = tmp_path / "many"
    for i in range(n):
        make_image(folder / f"{i:03d}.jpg", i)
    return folder


def test_sigint_exits_130_with_records_flushed_and_says_how_to_resume(
    fake_models: dict[str, Path], tmp_path: Path
) -> None:
    folder, out = _many(tmp_path), tmp_path / "out"
    proc = _start_batch(fake_models["rtdetr"], folder, out, "--conf", "0.01")
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the run is under way
    assert json.loads(first)["error"] is None
    proc.send_signal(signal.SIGINT)
    rest, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    records = read_jsonl(out / "results.jsonl")
    assert 1 <= len(records) < 40
    assert len(records) == len([first, *rest.splitlines()])  # every image in flight was finished
    assert "Interrupted" in stderr
    [hint] = [line for line in stderr.splitlines() if line.startswith("To resume: ")]
    words = shlex.split(hint.removeprefix("To resume: "))
    assert words[:3] == ["cd", os.getcwd(), "&&"] and words[4:6] == ["-m", "detect_cli"]
    assert words[-3:] == ["--out", str(out), "--resume"] and "--conf" in words and "--json" in words
    assert "--max-pixels" not in words  # options left at their default are not repeated
    resumed = runner.invoke(app, words[words.index("image") :])  # the printed command, as given
    assert resumed.exit_code == 0, resumed.output
    assert sorted(r["source"] for r in read_jsonl(out / "results.jsonl")) == sorted(
        str(p) for p in folder.iterdir()
    )


def test_sigkill_then_resume_records_each_input_once_with_intact_outputs(
    fake_models: dict[str, Path], tmp_path: Path
) -> None:
    import cv2

    rtdetr_pt = fake_models["rtdetr"]
    folder, out = _many(tmp_path, 30), tmp_path / "out"
    formats = ["-f", "csv", "-f", "txt", "-f", "coco"]
    proc = _start_batch(rtdetr_pt, folder, out, "--conf", "0.01", *formats)
    assert proc.stdout is not None
    for _ in range(5):
        assert proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)  # no handler runs: whatever was on disk stays as it was
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    before = len(read_jsonl(out / "results.jsonl"))
    assert 5 <= before < 30

    args = ["-m", str(rtdetr_pt), "--imgsz", str(SMALL_IMGSZ), "--conf", "0.01", "-o", str(out), *formats]
    result = runner.invoke(app, ["image", str(folder), *args, "--resume"])
    assert result.exit_code == 0, result.output
    assert f"{before} skipped" in result.stderr

    records = read_jsonl(out / "results.jsonl")
    assert sorted(r["source"] for r in records) == sorted(str(p) for p in folder.iterdir())  # once each
    assert all(r["error"] is None and r["detections"] for r in records)
    for r in records:
        name = Path(r["source"]).name
        assert cv2.imread(str(out / "many" / name)) is not None, name
        assert len((out / "labels" / "many" / name).with_suffix(".txt").read_text().splitlines()) == len(
            r["detections"]
        )
    n_dets = sum(len(r["detections"]) for r in records)
    assert len(list(csv.DictReader((out / "results.csv").open()))) == n_dets
    assert len(json.loads((out / "coco_results.json").read_text())) == n_dets
    assert not list(out.rglob("*.part")), "no temporary file is left behind"


@pytest.mark.gpu
@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs CUDA")
@pytest.mark.parametrize(("extra", "atol"), [([], 1.0), (["--half"], None)])
def test_cuda_run_matches_cpu(
    detect, images: Path, tmp_path: Path, extra: list[str], atol: float | None
) -> None:  # type: ignore[no-untyped-def]
    """The same seeded model on CUDA finds what it finds on CPU (fp32), and fp16 runs."""
    cpu, _ = detect(str(images / "top.png"), "--conf", "0.01", "--max-det", "20", out=tmp_path / "cpu")
    argv = [
        "image",
        str(images / "top.png"),
        "--conf",
        "0.01",
        "--max-det",
        "20",
        "-m",
        "rtdetr-l.yaml",
        "--imgsz",
        str(SMALL_IMGSZ),
        "--device",
        "cuda",
        "-o",
        str(tmp_path / "gpu"),
        *extra,
    ]
    gpu = runner.invoke(app, argv)
    assert cpu.exit_code == 0 and gpu.exit_code == 0, gpu.output
    [on_cpu] = read_jsonl(tmp_path / "cpu" / "results.jsonl")
    [on_gpu] = read_jsonl(tmp_path / "gpu" / "results.jsonl")
    assert on_gpu["detections"] and on_gpu["error"] is None
    if atol is not None:
        import numpy as np

        assert len(on_gpu["detections"]) == len(on_cpu["detections"])
        boxes = [sorted(d["xyxy"] for d in r["detections"]) for r in (on_cpu, on_gpu)]
        assert np.allclose(boxes[0], boxes[1], atol=atol)


def test_resume_hint_repeats_an_option_given_away_from_its_default(tmp_path: Path) -> None:
    import typer.main

    from detect_cli.cli.options import resume_command

    group = typer.main.get_command(app)
    with group.make_context("detect", ["image", "a.jpg"]) as parent:
        image = group.get_command(parent, "image")  # type: ignore[attr-defined]
        for given, want in ((["--max-pixels", "250M"], ["--max-pixels", "250000000"]), ([], [])):
            ctx = image.make_context("image", ["a.jpg", *given], parent=parent)
            words = shlex.split(resume_command(ctx, tmp_path / "o"))
            assert [w for w in words if w == "--max-pixels"] == want[:1]
            if want:
                assert words[words.index("--max-pixels") + 1] == want[1]


NUMBER_OPTIONS = {
    ("image",): ["--conf", "--iou", "--imgsz", "--max-det", "--batch", "--url-timeout", "--max-pixels"],
    ("image", "--executor", "ray"): ["--ray-workers"],
    ("video",): ["--vid-stride", "--max-frames", "--reconnects", "--batch", "--url-timeout", "--max-pixels"],
    ("compare",): ["--warmup", "--runs", "--explain", "--vid-stride", "--max-frames", "--url-timeout"],
    ("explain",): ["--objects", "--conf", "--imgsz", "--url-timeout", "--max-pixels"],
}


@pytest.mark.parametrize(
    ("command", "option"), [(c, o) for c, options in NUMBER_OPTIONS.items() for o in options]
)
@pytest.mark.parametrize("value", ["inf", "nan", "-1", "1e10", "1e400", "99999999999999999999"])
def test_every_number_option_refuses_non_finite_negative_and_huge_values(
    tmp_path: Path, command: tuple[str, ...], option: str, value: str
) -> None:
    """Each is a usage error naming the option, exit 2, before anything runs: `--max-pixels inf` was a
    traceback, and `--url-timeout 1e10` killed the run at its first URL (a thread wait overflowed)."""
    model = ["--models", "rtdetr-l.yaml,yolo11n.yaml"] if command[0] == "compare" else ["-m", "rtdetr-l.yaml"]
    argv = [*command, str(tmp_path / "x.jpg"), *model, option, value, "-o", str(tmp_path / "o")]
    result = runner.invoke(app, argv, terminal_width=200)
    assert result.exit_code == 2, result.output
    [line] = _errors_on_one_line(result.stderr)
    assert f"Invalid value for '{option}'" in line
    assert not (tmp_path / "o").exists()


def test_the_largest_url_timeout_allowed_works(http_root: tuple[str, Path]) -> None:
    from detect_cli.cli.options import MAX_URL_TIMEOUT_S
    from detect_cli.sources import fetch_url

    base, root = http_root
    make_image(root / "pic.jpg")
    assert fetch_url(f"{base}/pic.jpg", timeout=MAX_URL_TIMEOUT_S)


def test_a_file_whose_name_reads_as_a_pattern_is_that_file(detect, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "pics"
    folder.mkdir()
    make_image(folder / "IMG [1].jpg")
    make_image(folder / "IMG 1.jpg")
    result, out = detect(str(folder / "IMG [1].jpg"), "-q")
    assert result.exit_code == 0, result.output
    assert [r["source"] for r in read_jsonl(out / "results.jsonl")] == [str(folder / "IMG [1].jpg")]


def test_a_cut_tiff_fails_its_input_and_pillow_says_nothing(
    fake_models: dict[str, Path], tmp_path: Path
) -> None:
    """In a real process: Pillow warned twice on stderr ('Corrupt EXIF data') for a cut TIFF."""
    whole = tmp_path / "whole.tif"
    make_image(whole)  # OpenCV writes the TIFF directory after the pixels: cut, Pillow reads past the end
    (tmp_path / "cut.tif").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    argv = fake_cli_argv(
        "image", tmp_path / "cut.tif", whole, "-m", fake_models["rtdetr"], "-o", tmp_path / "o"
    )
    proc = subprocess.run(argv, capture_output=True, text=True, env=fake_cli_env(), timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Warning" not in proc.stderr and "PIL" not in proc.stderr, proc.stderr
    records = {Path(r["source"]).name: r.get("error") for r in read_jsonl(tmp_path / "o" / "results.jsonl")}
    assert records == {"cut.tif": "not a readable image (a damaged or cut-short TIFF)", "whole.tif": None}


@pytest.mark.parametrize(
    ("change", "code", "line"),
    [
        (
            lambda d: d["annotations"][0].update(bbox=[10, 10, -5, 20]),
            0,
            "note: labels: 1 box of no or negative size (first: image 1, annotation 1) — dropped",
        ),
        (
            lambda d: d["images"][1].update(id=1),
            2,
            "error: labels annotations.json: 1 image id used twice (first: image 1)",
        ),
    ],
)
def test_compare_says_each_labels_problem_on_one_line(  # type: ignore[no-untyped-def]
    fake_models: dict[str, Path], tmp_path: Path, change, code: int, line: str
) -> None:
    from labeled_data import tiny_dataset

    ds = tiny_dataset(tmp_path / "ds")
    data = json.loads(ds.coco_json.read_text())
    change(data)
    ds.coco_json.write_text(json.dumps(data))
    models = f"{fake_models['rtdetr']},{fake_models['yolo']}"
    argv = ["compare", str(ds.images), "--coco", str(ds.coco_json), "-m", models, "--imgsz", str(SMALL_IMGSZ)]
    result = runner.invoke(app, [*argv, "--device", "cpu", "--no-memory", "-o", str(tmp_path / "o"), "-q"])
    assert result.exit_code == code, result.output
    assert any(got.startswith(line) for got in result.stderr.splitlines()), result.stderr
    assert len(_errors_on_one_line(result.stderr)) == (1 if code else 0)


def test_a_picture_beside_a_folder_named_like_its_labels_keeps_them_apart(detect, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """photos/a.png's labels were labels/photos/a.txt, a folder of labels for photos/a.txt/x.png: one
    of them could not be written. a.png's outputs now keep its suffix (labels/photos/a.png.txt)."""
    make_image(tmp_path / "photos" / "a.png", 1)
    make_image(tmp_path / "photos" / "a.txt" / "x.png", 2)
    result, out = detect(str(tmp_path / "photos"), "--conf", "0.01", "-f", "txt")
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out / "results.jsonl")
    assert len(rows) == 2 and all(r["error"] is None for r in rows)
    labels = (out / "labels").rglob("*.txt")
    assert sorted(p.relative_to(out / "labels").as_posix() for p in labels if p.is_file()) == [
        "photos/a.png.txt",
        "photos/a.txt/x.txt",
    ]
    assert (out / "photos" / "a.png.png").is_file() and (out / "photos" / "a.txt" / "x.png").is_file()
