"""The README's promises under hostile input (issue 10), proved with real files: an output never lands on
an input, one bad input is recorded and the run goes on, the run record stays valid JSON, and every refusal
is one `error:` line. The tests that need real processes, signals, sockets or memory measurement are in
test_hostile_signals.py; the helpers here serve both files.

The runs use the fake detector (`fake_yolo`, tests/fakes.py): what is under test is files, records and
messages, not what a model finds. Every test checks, where it applies: no traceback, the exit code, one
record per input, inputs unchanged (sha256 of every file before and after) and nothing written outside
`--out`.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import subprocess
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import fake_cli_argv, fake_cli_env, make_image, make_video, read_video
from typer.testing import CliRunner

from detect_cli.cli import app

IMGSZ = "160"
BOX_CHARS = frozenset("╭╮╰╯│─┌┐└┘")
LOCK_NAME = ".detect.lock"  # the run folder's lock file: tool-owned, never an input
runner = CliRunner()


# ---------------------------------------------------------------------------------------------- helpers
@dataclass
class Ran:
    """What a `detect` run left: exit code, stdout, stderr (and seconds, for a subprocess)."""

    code: int
    stdout: str
    stderr: str
    elapsed: float = 0.0
    stdout_bytes: bytes = b""


def model_args(model: Path) -> list[str]:
    return ["-m", str(model), "--imgsz", IMGSZ, "--device", "cpu"]


def cli(*argv: object, cwd: Path | None = None) -> Ran:
    """`detect ...` in-process (fast), optionally from another working folder. An exception that escaped
    the app shows as a traceback in stderr, as it would in a terminal."""
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = runner.invoke(app, [str(a) for a in argv])
    finally:
        os.chdir(old)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += f"\nTraceback (escaped the app): {result.exception!r}"
    return Ran(result.exit_code, result.stdout, stderr)


def child_env(delay: float = 0.0) -> dict[str, str]:
    return fake_cli_env(delay)


def detect_argv(*argv: object) -> list[str]:
    """`python -m detect_cli ...` in a real process, on the fake detector (`fake_models` weights): these
    tests are about files, processes and signals, not about what a model finds."""
    return fake_cli_argv(*argv)


def sub(*argv: object, cwd: Path | None = None, timeout: float = 120) -> Ran:
    """`detect ...` in a real process (the fake detector: `detect_argv`). A run still going after
    `timeout` seconds is killed and the test fails as a hang (never hangs the suite)."""
    start = time.monotonic()
    try:
        proc = subprocess.run(
            detect_argv(*argv), cwd=cwd, capture_output=True, timeout=timeout, env=child_env()
        )
    except subprocess.TimeoutExpired as e:
        tail = (e.stderr or b"")[-1500:].decode("utf-8", "replace")
        pytest.fail(f"hang: `detect {' '.join(map(str, argv))}` still running after {timeout}s\n{tail}")
    return Ran(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
        time.monotonic() - start,
        proc.stdout,
    )


def no_traceback(ran: Ran) -> None:
    assert "Traceback" not in ran.stderr, ran.stderr[-3000:]


def one_line_error(ran: Ran) -> str:
    """The single `error:` line of a refused run (warnings aside): no traceback, no rich box."""
    no_traceback(ran)
    errors = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, f"want exactly one 'error:' line, got:\n{ran.stderr[-3000:]}"
    assert not BOX_CHARS & set(ran.stderr), f"a box, not one line:\n{ran.stderr[-3000:]}"
    return errors[0]


def records(path: Path) -> list[dict]:
    """Every line of a JSONL record, strictly: UTF-8, newline-terminated, each line a JSON object."""
    text = path.read_text(encoding="utf-8")  # strict: raises on bytes that are not UTF-8
    assert text.endswith("\n") or not text, f"{path}: the last line is cut: {text[-200:]!r}"
    rows = []
    for n, line in enumerate(text.split("\n")[:-1], 1):
        try:
            rows.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{path} line {n} is not JSON: {line[:300]!r}")
    return rows


def snapshot(root: Path, *exclude: Path) -> dict[str, str]:
    """Every entry below root (outside `exclude`): sha256 of regular files, the target of links, the
    type of anything else. FIFOs are never opened. The run's lock file is ignored."""
    skip = {os.path.realpath(p) for p in exclude}
    seen: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if os.path.realpath(os.path.join(dirpath, d)) not in skip]
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            if name == LOCK_NAME or os.path.realpath(full) in skip:
                continue
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    seen[rel] = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                seen[rel] = "link:" + os.readlink(full)
            else:
                seen[rel] = "dir" if stat.S_ISDIR(st.st_mode) else f"mode:{stat.S_IFMT(st.st_mode)}"
    return seen


def assert_unchanged(before: dict[str, str], after: dict[str, str]) -> None:
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"written or changed outside --out / inputs touched: {changed}"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_ihdr(width: int, height: int, color_type: int = 2) -> bytes:
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))


def header_only_png(width: int, height: int) -> bytes:
    """~50 bytes that declare width x height: what a decoder would allocate before reading any pixel."""
    return PNG_SIGNATURE + png_ihdr(width, height) + png_chunk(b"IEND", b"")


def header_only_tiff(width: int, height: int) -> bytes:
    """A little-endian TIFF whose first IFD declares width x height, 8-bit grey, and holds no pixels."""
    long_, short = 4, 3
    tags = [
        (256, long_, width),  # ImageWidth
        (257, long_, height),  # ImageLength
        (258, short, 8),  # BitsPerSample
        (259, short, 1),  # Compression: none
        (262, short, 1),  # Photometric: black is zero
        (273, long_, 8),  # StripOffsets
        (277, short, 1),  # SamplesPerPixel
        (278, long_, height),  # RowsPerStrip
        (279, long_, width * height),  # StripByteCounts
    ]
    ifd = struct.pack("<H", len(tags))
    for tag, kind, value in tags:
        ifd += struct.pack("<HHI", tag, kind, 1) + (
            struct.pack("<I", value) if kind == long_ else struct.pack("<HH", value, 0)
        )
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)


def good_images(folder: Path, n: int, prefix: str = "good") -> list[Path]:
    return [make_image(folder / f"{prefix}{i}.jpg", i) for i in range(n)]


def by_name(rows: list[dict]) -> dict[str, dict]:
    return {os.path.basename(r["source"]): r for r in rows}


# ------------------------------------------------------------------------ 1-3: outputs never hit inputs
@pytest.mark.parametrize("case", ["image", "video", "glob"])
def test_output_onto_an_input_is_refused(case: str, fake_yolo: Path, tmp_path: Path) -> None:
    """`-o .` next to the input (even with --exist-ok) would burn boxes into bus.jpg, replace clip.mp4,
    or (for a glob from the parent folder) write onto photos/x.jpg: refused before any work, in one line,
    exit 2, every input byte-identical and no run record left behind."""
    if case == "image":
        cwd = tmp_path / "photos"
        make_image(cwd / "bus.jpg")
        argv = ["yolo", "image", "bus.jpg"]
    elif case == "video":
        cwd = tmp_path / "clips"
        make_video(cwd / "clip.mp4", frames=6)
        argv = ["yolo", "video", "clip.mp4"]
    else:
        cwd = tmp_path
        good_images(tmp_path / "photos", 2, prefix="x")
        argv = ["yolo", "image", "photos/*.jpg"]
    before = snapshot(tmp_path)
    ran = cli(*argv, "-o", ".", "--exist-ok", *model_args(fake_yolo), cwd=cwd)
    assert ran.code == 2, ran.stderr[-2000:]
    assert "overwrite" in one_line_error(ran)
    assert not (cwd / "results.jsonl").exists() and not (cwd / "frames.jsonl").exists()
    assert_unchanged(before, snapshot(tmp_path))


def test_a_file_the_tool_did_not_write_is_never_replaced(fake_yolo: Path, tmp_path: Path) -> None:
    """`-f txt -o ..` from ds/images would write ds/labels/x.txt: the user's ground truth. The run is
    refused (exit 2, one line naming the overwrite) and the label file keeps its content."""
    ds = tmp_path / "ds"
    make_image(ds / "images" / "x.jpg")
    truth = ds / "labels" / "x.txt"
    truth.parent.mkdir()
    truth.write_text("0 0.5 0.5 0.2 0.2\n")
    before = snapshot(tmp_path)
    ran = cli(
        "yolo",
        "image",
        "x.jpg",
        "-o",
        "..",
        "-f",
        "txt",
        "--no-save",
        *model_args(fake_yolo),
        cwd=ds / "images",
    )
    assert ran.code == 2, ran.stderr[-2000:]
    assert "overwrite" in one_line_error(ran)
    assert truth.read_text() == "0 0.5 0.5 0.2 0.2\n"
    assert_unchanged(before, snapshot(tmp_path))


def test_out_inside_a_source_folder_is_not_taken_for_input(fake_yolo: Path, tmp_path: Path) -> None:
    """`photos -o photos/det`, run twice (--exist-ok): the second run reads the 3 originals only, never
    its own annotated copies under det/, and the originals are untouched."""
    photos, det = tmp_path / "photos", tmp_path / "photos" / "det"
    originals = sorted(str(p) for p in (*good_images(photos, 2), make_image(photos / "c.png", 7)))
    before = snapshot(tmp_path, det)
    first = cli("yolo", "image", photos, "-o", det, *model_args(fake_yolo))
    assert first.code == 0, first.stderr[-2000:]
    no_traceback(first)
    n_first = len(records(det / "results.jsonl"))
    assert n_first == 3
    second = cli("yolo", "image", photos, "-o", det, "--exist-ok", *model_args(fake_yolo))
    assert second.code == 0, second.stderr[-2000:]
    no_traceback(second)
    new = records(det / "results.jsonl")[n_first:]
    assert sorted(r["source"] for r in new) == originals
    assert not [r["source"] for r in new if "/det/" in r["source"]]
    assert all(r["error"] is None for r in new)
    assert_unchanged(before, snapshot(tmp_path, det))


def test_out_equal_to_a_source_folder_is_refused(fake_yolo: Path, tmp_path: Path) -> None:
    """`photos -o photos`: the annotated copies would go among (or onto) the inputs: exit 2, one line."""
    photos = tmp_path / "photos"
    good_images(photos, 2)
    before = snapshot(tmp_path)
    ran = cli("yolo", "image", photos, "-o", photos, *model_args(fake_yolo))
    assert ran.code == 2, ran.stderr[-2000:]
    one_line_error(ran)
    assert_unchanged(before, snapshot(tmp_path))


# -------------------------------------------------------------------- 4: per-input isolation, pixels
@pytest.mark.parametrize(("name", "data"), [("huge.png", header_only_png), ("huge.tif", header_only_tiff)])
def test_header_declaring_40000_squared_is_one_failed_record(
    name: str, data, fake_yolo: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A ~100-byte file declaring 40000x40000 is refused from its header ("pixels") as that input's
    record; the good images are processed (exit 1). --resume remembers the failure (exit 1),
    --retry-failed tries it again without a crash (exit 1), and an image added later is processed."""
    folder, out = tmp_path / "in", tmp_path / "out"
    good_images(folder, 2)
    (folder / name).write_bytes(data(40000, 40000))
    before = snapshot(tmp_path, out)
    args = [folder, "-o", out, *model_args(fake_yolo)]

    ran = cli("yolo", "image", *args)
    assert ran.code == 1, ran.stderr[-2000:]
    no_traceback(ran)
    rows = records(out / "results.jsonl")
    assert len(rows) == 3
    named = by_name(rows)
    assert "pixels" in named[name]["error"]
    assert named["good0.jpg"]["error"] is None and named["good1.jpg"]["error"] is None

    for flag in ("--resume", "--retry-failed"):
        again = cli("yolo", "image", *args, flag)
        assert again.code == 1, f"{flag}: {again.stderr[-2000:]}"
        no_traceback(again)
        assert {os.path.basename(r["source"]) for r in records(out / "results.jsonl")} == set(named)

    make_image(folder / "late.jpg", 9)
    before["in/late.jpg"] = snapshot(tmp_path, out)["in/late.jpg"]
    later = cli("yolo", "image", *args, "--resume")
    assert later.code == 1, later.stderr[-2000:]
    no_traceback(later)
    final = records(out / "results.jsonl")
    assert [r["error"] for r in final if r["source"].endswith("late.jpg")] == [None]
    assert "pixels" in by_name(final)[name]["error"]
    assert_unchanged(before, snapshot(tmp_path, out))


@pytest.mark.parametrize(("limit", "refused"), [("1000", True), ("10K", True), ("1M", False), ("1G", False)])
def test_max_pixels_takes_a_count_with_a_suffix(
    limit: str, refused: bool, fake_yolo: Path, tmp_path: Path
) -> None:
    """--max-pixels N[K|M|G]: a 96x128 picture (12288 px) is refused above its budget as a failed record
    (exit 1, "pixels"), and processed within it (exit 0)."""
    image, out = make_image(tmp_path / "in" / "small.jpg"), tmp_path / "out"
    before = snapshot(tmp_path, out)
    ran = cli("yolo", "image", image, "--max-pixels", limit, "-o", out, *model_args(fake_yolo))
    no_traceback(ran)
    assert ran.code == (1 if refused else 0), ran.stderr[-2000:]
    [row] = records(out / "results.jsonl")
    if refused:
        assert "pixels" in row["error"]
    else:
        assert row["error"] is None
    assert_unchanged(before, snapshot(tmp_path, out))


# ----------------------------------------------------------------------- 5: a name that is not UTF-8
def test_non_utf8_file_name_is_recorded_losslessly(fake_yolo: Path, tmp_path: Path) -> None:
    """A file named b"caf\\xe9.jpg" (Latin-1, not UTF-8) is processed like any other: results.jsonl stays
    UTF-8 JSON, its `path` maps back to the real bytes with os.fsencode (surrogate escapes), the CSV and
    COCO tables are built, and `--json` prints valid JSON lines."""
    folder, out = tmp_path / "in", tmp_path / "out"
    make_image(folder / "plain.jpg", 1)
    odd = os.path.join(os.fsencode(folder), b"caf\xe9.jpg")
    os.rename(make_image(folder / "tmp.jpg", 2), odd)
    before = snapshot(tmp_path, out)

    ran = cli("yolo", "image", folder, "-f", "csv", "-f", "coco", "-o", out, *model_args(fake_yolo))
    no_traceback(ran)
    assert ran.code == 0, ran.stderr[-2000:]
    rows = records(out / "results.jsonl")
    assert len(rows) == 2 and all(r["error"] is None for r in rows)
    [row] = [r for r in rows if b"\xe9" in os.fsencode(r["path"])]
    assert os.path.realpath(os.fsencode(row["path"])) == os.path.realpath(odd)
    assert (out / "results.csv").is_file() and (out / "coco_results.json").is_file()
    json.loads((out / "coco_results.json").read_text(encoding="utf-8"))

    piped = sub(
        "yolo", "image", folder, "--json", "-o", tmp_path / "out-json", *model_args(fake_yolo), timeout=180
    )
    no_traceback(piped)
    assert piped.code == 0, piped.stderr[-2000:]
    lines = piped.stdout_bytes.decode("utf-8").splitlines()  # strict UTF-8
    assert len(lines) == 2 and all(json.loads(line)["error"] is None for line in lines)
    assert_unchanged(before, snapshot(tmp_path, out, tmp_path / "out-json"))


# ----------------------------------------------------------------------- 10-11: the run record heals
def test_cut_last_line_is_repaired_before_appending(fake_yolo: Path, tmp_path: Path) -> None:
    """A results.jsonl whose last line was cut (disk full, power loss) is repaired before an --exist-ok
    run appends to it: every line is JSON afterwards, one record per run per input."""
    image, out = make_image(tmp_path / "in" / "a.jpg"), tmp_path / "out"
    args = ["yolo", "image", image, "-o", out, "--no-save", *model_args(fake_yolo)]
    assert cli(*args).code == 0
    with (out / "results.jsonl").open("ab") as f:
        f.write(b'{"source": "cut')
    ran = cli(*args, "--exist-ok")
    no_traceback(ran)
    assert ran.code == 0, ran.stderr[-2000:]
    rows = records(out / "results.jsonl")
    assert [r["source"] for r in rows] == [str(image), str(image)]


def test_garbage_line_is_reported_and_kept_aside_on_resume(fake_yolo: Path, tmp_path: Path) -> None:
    """`not json` in the middle of results.jsonl: --resume says so (file and line), leaves only JSON in
    results.jsonl (each input once), and keeps the rejected text in a file beside it."""
    folder, out = tmp_path / "in", tmp_path / "out"
    good_images(folder, 2)
    args = ["yolo", "image", folder, "-o", out, "--no-save", *model_args(fake_yolo)]
    assert cli(*args).code == 0
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    (out / "results.jsonl").write_text(lines[0] + "not json\n" + "".join(lines[1:]))
    make_image(folder / "good2.jpg", 2)
    before = snapshot(tmp_path, out)

    ran = cli(*args, "--resume")
    no_traceback(ran)
    assert ran.code == 0, ran.stderr[-2000:]
    assert "results.jsonl" in ran.stderr and "line" in ran.stderr, ran.stderr
    rows = records(out / "results.jsonl")
    assert sorted(r["source"] for r in rows) == sorted(str(p) for p in folder.iterdir())
    rejected = [p for p in out.iterdir() if "rejected" in p.name]
    assert rejected and "not json" in "".join(p.read_text(errors="replace") for p in rejected)
    assert_unchanged(before, snapshot(tmp_path, out))


# ------------------------------------------------------------------------------------------ 14: lists
def _nested_lists(root: Path) -> tuple[str, dict]:
    (root / "lists").mkdir()
    (root / "lists" / "a.txt").write_text("@b.txt\n")
    (root / "lists" / "b.txt").write_text("img.jpg\n")
    make_image(root / "lists" / "img.jpg")
    return "@lists/a.txt", {"img.jpg": None}


def _self_list(root: Path) -> tuple[str, dict]:
    (root / "lists").mkdir()
    (root / "lists" / "self.txt").write_text("@self.txt\nimg.jpg\n")
    make_image(root / "lists" / "img.jpg")
    return "@lists/self.txt", {"img.jpg": None, "self.txt": "itself"}


def _latin1_list(root: Path) -> tuple[str, dict]:
    (root / "lists").mkdir()
    (root / "lists" / "l1.txt").write_bytes(b"caf\xe9.jpg\n")
    os.rename(
        make_image(root / "lists" / "tmp.jpg"), os.path.join(os.fsencode(root / "lists"), b"caf\xe9.jpg")
    )
    return "@lists/l1.txt", {os.fsdecode(b"caf\xe9.jpg"): None}


@pytest.mark.parametrize(
    ("build", "code"),
    [(_nested_lists, 0), (_self_list, 1), (_latin1_list, 0)],
    ids=["nested", "self", "latin1"],
)
def test_lists(build, code: int, fake_yolo: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """@lists: a list naming another list resolves it beside itself (not in the cwd); a list naming
    itself is one failed record ("itself"), not a RecursionError; a Latin-1 list names the files whose
    names are those bytes."""
    source, expected = build(tmp_path)
    out = tmp_path / "out"
    before = snapshot(tmp_path, out)
    ran = cli("yolo", "image", source, "-o", out, *model_args(fake_yolo), cwd=tmp_path)
    no_traceback(ran)
    assert ran.code == code, ran.stderr[-2000:]
    rows = records(out / "results.jsonl")
    got = {os.path.basename(r["source"]).lstrip("@"): r["error"] for r in rows}
    assert got.keys() == expected.keys(), got
    for name, error in expected.items():
        assert (got[name] is None) if error is None else (error in got[name]), (name, got[name])
    for r in rows:
        if r["error"] is None:
            assert os.path.realpath(os.fsencode(r["path"])).startswith(
                os.fsencode(os.path.realpath(tmp_path / "lists"))
            )
    assert_unchanged(before, snapshot(tmp_path, out))


# ------------------------------------------------------------------------ 15: smaller, clearer errors
def _empty_folder(tmp: Path) -> list[str]:
    (tmp / "models").mkdir()
    return ["-m", str(tmp / "models")]


def _missing_pt(tmp: Path) -> list[str]:
    return ["-m", str(tmp / "missing.pt")]


def _empty_onnx(tmp: Path) -> list[str]:
    (tmp / "empty.onnx").write_bytes(b"")
    return [
        "-m",
        str(tmp / "empty.onnx"),
        "--backend",
        "onnx",
    ]  # conftest's DETECT_BACKEND=torch would refuse it


@pytest.mark.parametrize(
    ("options", "must", "must_not"),
    [
        (_empty_folder, "", "exported exported"),
        (_missing_pt, "no such file", "unknown model"),
        (_empty_onnx, "", "unexpected"),
        (lambda tmp: ["--conf", "2"], "", ""),
        (lambda tmp: ["--bogus"], "", ""),
    ],
    ids=["model-empty-folder", "model-missing-pt", "model-empty-onnx", "conf-2", "unknown-option"],
)
def test_bad_model_or_option_is_one_line(
    options, must: str, must_not: str, fake_yolo: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A bad -m or option: exit 2, one `error:` line (no rich box, no traceback) saying what is wrong,
    and no output folder for a run that never started."""
    image, out = make_image(tmp_path / "in" / "a.jpg"), tmp_path / "out"
    extra = options(tmp_path)
    argv = ["yolo", "image", image, "-o", out, "--imgsz", IMGSZ, "--device", "cpu", *extra]
    if "-m" not in extra:
        argv += ["-m", fake_yolo]
    before = snapshot(tmp_path)
    ran = cli(*argv)
    assert ran.code == 2, ran.stderr[-2000:]
    line = one_line_error(ran).lower()
    assert must in line, line
    assert not must_not or must_not not in ran.stderr.lower(), ran.stderr
    assert not out.exists()
    assert_unchanged(before, snapshot(tmp_path))


# ------------------------------------------------------------------- 16: broken symlink, 19: stride
def test_broken_symlink_is_named_as_such(fake_yolo: Path, tmp_path: Path) -> None:
    """img/x.jpg -> nowhere.jpg among good images: recorded as a "broken symlink" (not "file vanished"),
    the others processed, exit 1."""
    folder, out = tmp_path / "img", tmp_path / "out"
    good_images(folder, 2)
    (folder / "x.jpg").symlink_to("nowhere.jpg")
    before = snapshot(tmp_path, out)
    ran = cli("yolo", "image", folder, "-o", out, *model_args(fake_yolo))
    no_traceback(ran)
    assert ran.code == 1, ran.stderr[-2000:]
    named = by_name(records(out / "results.jsonl"))
    assert set(named) == {"good0.jpg", "good1.jpg", "x.jpg"}
    assert "broken symlink" in named["x.jpg"]["error"]
    assert named["good0.jpg"]["error"] is None and named["good1.jpg"]["error"] is None
    assert_unchanged(before, snapshot(tmp_path, out))


def test_vid_stride_longer_than_the_video_gives_one_frame(fake_yolo: Path, tmp_path: Path) -> None:
    """--vid-stride 1000 on a 12-frame clip processes frame 0 and writes a 1-frame video (exit 0), not
    "cannot write video" (at 1 fps the stride asks the encoder for 0.001 fps, which mp4v refuses)."""
    from detect_cli.video import pick_codec

    clip, out = make_video(tmp_path / "in" / "clip.mp4", frames=12, fps=1.0), tmp_path / "out"
    before = snapshot(tmp_path, out)
    ran = cli("yolo", "video", clip, "--vid-stride", "1000", "-o", out, *model_args(fake_yolo))
    no_traceback(ran)
    assert ran.code == 0, ran.stderr[-2000:]
    assert [r["frame"] for r in records(out / "frames.jsonl")] == [0]
    assert read_video(out / f"clip{pick_codec().suffix}")[0] == 1
    assert_unchanged(before, snapshot(tmp_path, out))


# ------------------------------------------------- issue 18: the run's own files, never through a link
@pytest.mark.parametrize("name", [LOCK_NAME, "results.jsonl", "results.jsonl.rejected"])
@pytest.mark.parametrize("extra", [[], ["--exist-ok"], ["--resume"]])
def test_a_link_at_the_runs_own_file_never_writes_through(
    fake_yolo: Path, tmp_path: Path, name: str, extra: list[str]
) -> None:
    """out/.detect.lock (or the record) a symlink to the input: one `error:` line naming the link, exit
    2, and the input keeps every byte (the run's pid used to be written through the lock into it)."""
    photo = make_image(tmp_path / "in" / "a.jpg")
    out = tmp_path / "out"
    out.mkdir()
    (out / name).symlink_to(photo)
    before = snapshot(tmp_path)
    ran = cli("yolo", "image", photo, "-o", out, *extra, *model_args(fake_yolo))
    assert ran.code == 2, ran.stderr[-2000:]
    assert "symbolic link" in one_line_error(ran)
    assert_unchanged(before, snapshot(tmp_path))


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_resume_into_a_record_that_is_a_fifo_or_folder_is_one_line(
    fake_yolo: Path, tmp_path: Path, kind: str
) -> None:
    """--resume where results.jsonl is a FIFO (reading it used to wait forever for a writer) or a folder
    (the catch-all "unexpected ..." error): one `error:` line naming it, exit 2, in a real process
    that must end within its timeout."""
    photo = make_image(tmp_path / "in" / "a.jpg")
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_text("")  # an earlier run's folder
    os.mkfifo(out / "results.jsonl") if kind == "fifo" else (out / "results.jsonl").mkdir()
    before = snapshot(tmp_path)
    ran = sub("yolo", "image", photo, "-o", out, "--resume", *model_args(fake_yolo), timeout=60)
    assert ran.code == 2, ran.stderr[-2000:]
    line = one_line_error(ran)
    assert f"results.jsonl is a {'FIFO' if kind == 'fifo' else 'folder'}" in line, line
    assert "unexpected" not in line
    assert_unchanged(before, snapshot(tmp_path))


WRONG_SHAPES = [  # JSON lines, each of a shape no detect run writes
    {"source": "x.jpg", "model": "m", "detections": None, "error": None},
    {"source": "x.jpg", "model": "m", "path": ["x.jpg"], "detections": [], "error": None},
    {"source": "x.jpg", "detections": [], "error": None},
    {
        "source": "x.jpg",
        "model": "m",
        "detections": [{"class_id": "0", "class_name": "a", "confidence": 0.5, "xyxy": [0, 0, 1, 1]}],
        "error": None,
    },
    {
        "source": "x.jpg",
        "model": "m",
        "detections": [{"class_id": 0, "class_name": "a", "confidence": 0.5, "xyxy": [9, 0, 1, 1]}],
        "error": None,
    },
    {"source": "x.jpg", "model": "m", "width": float("nan"), "detections": [], "error": None},
]


def test_records_of_the_wrong_shape_are_set_aside_not_a_crash(fake_yolo: Path, tmp_path: Path) -> None:
    """JSON records of the wrong shape in results.jsonl: --resume moves them to results.jsonl.rejected
    (exit 0, the real records kept), and a later --exist-ok run builds its tables past them."""
    photos, out = tmp_path / "in", tmp_path / "out"
    good_images(photos, 2)
    args = ["--format", "jsonl", "--format", "csv", "--format", "coco", *model_args(fake_yolo)]
    assert cli("yolo", "image", photos, "-o", out, *args).code == 0
    jsonl = out / "results.jsonl"
    good = jsonl.read_text()
    bad = "".join(json.dumps(r) + "\n" for r in WRONG_SHAPES)
    jsonl.write_text(good + bad)
    ran = cli("yolo", "image", photos, "-o", out, "--resume", *args)
    no_traceback(ran)
    assert ran.code == 0, ran.stderr[-2000:]
    assert f"{len(WRONG_SHAPES)} line(s) are not records" in ran.stderr
    assert jsonl.read_text() == good
    assert (out / "results.jsonl.rejected").read_text() == bad
    jsonl.write_text(good + bad)
    make_image(photos / "new.jpg", 9)
    ran = cli("yolo", "image", photos, "-o", out, "--exist-ok", *args)
    no_traceback(ran)
    assert ran.code == 0, ran.stderr[-2000:]
    assert isinstance(json.loads((out / "coco_results.json").read_text()), list)
    assert {r["source"] for r in WRONG_SHAPES}.isdisjoint(
        row.split(",")[0] for row in (out / "results.csv").read_text().splitlines()
    )


def test_the_resume_hint_works_pasted_with_a_source_that_starts_with_a_dash(
    fake_yolo: Path, tmp_path: Path
) -> None:
    """The "To resume:" command for sources named `-a.jpg` and `my photo's.jpg`: its words, split as a
    shell splits them, parse back to the same sources (after `--`), and running them finishes the run."""
    import shlex

    import typer.main

    from detect_cli.cli.options import resume_command

    make_image(tmp_path / "-a.jpg", 1)
    make_image(tmp_path / "my photo's.jpg", 2)
    out = tmp_path / "out"
    given = ["image", "-m", str(fake_yolo), "--imgsz", IMGSZ, "--", "-a.jpg", "my photo's.jpg"]
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        group = typer.main.get_command(app)
        with group.make_context("detect", list(given)) as parent:
            image = group.get_command(parent, "image")  # type: ignore[attr-defined]
            ctx = image.make_context("image", given[1:], parent=parent)
            hint = resume_command(ctx, out)
    finally:
        os.chdir(old)
    words = shlex.split(hint)
    assert words[:3] == ["cd", str(tmp_path), "&&"], hint
    argv = words[words.index("image") :]
    assert argv[argv.index("--") + 1 :] == ["-a.jpg", "my photo's.jpg"], hint
    with group.make_context("detect", list(argv)) as parent:
        parsed = group.get_command(parent, "image").make_context("image", argv[1:], parent=parent)  # type: ignore[attr-defined]
        assert [str(s) for s in parsed.params["sources"]] == ["-a.jpg", "my photo's.jpg"]
        assert parsed.params["resume"] is True
    ran = cli(*argv, cwd=tmp_path)
    assert ran.code == 0, ran.stderr[-2000:]
    assert sorted(os.path.basename(r["source"]) for r in records(out / "results.jsonl")) == [
        "-a.jpg",
        "my photo's.jpg",
    ]


# ------------------------------------------------------------------------ outputs, round three (issue 18)
def test_exist_ok_never_writes_through_a_link_planted_at_a_part_name(fake_yolo: Path, tmp_path: Path) -> None:
    """A rerun with --exist-ok into a folder where `.results.csv.part` and `.coco_results.json.part` are
    symlinks to an input: the tables are written, the input stays byte-identical."""
    photos, out = tmp_path / "photos", tmp_path / "out"
    victim = make_image(photos / "a.jpg")
    first = cli("yolo", "image", photos, "-o", out, "-f", "csv", *model_args(fake_yolo))
    assert first.code == 0, first.stderr[-2000:]
    before = snapshot(photos)
    for name in (".results.csv.part", ".coco_results.json.part"):
        (out / name).symlink_to(victim)
    ran = cli(
        "yolo", "image", photos, "-o", out, "-f", "csv", "-f", "coco", "--exist-ok", *model_args(fake_yolo)
    )
    assert ran.code == 0, ran.stderr[-2000:]
    assert_unchanged(before, snapshot(photos))
    assert json.loads((out / "coco_results.json").read_text()) and (out / "results.csv").read_text()


@pytest.mark.parametrize("failing", [1, 3])
def test_a_full_disk_while_drawing_ends_in_one_line_with_the_way_to_resume(
    failing: int, fake_yolo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC injected at the write of the first (raised by the next write) or the last annotated picture
    (raised only when the sinks close): either way one `error:` line naming the full disk and --resume,
    exit 2, the inputs before it recorded; the resumed run finishes the rest."""
    import errno

    from detect_cli.writers import annotated

    photos, out = tmp_path / "photos", tmp_path / "out"
    for i in range(3):
        make_image(photos / f"{i}.jpg", i)
    real, calls = annotated.atomic_write_bytes, []

    def fill_up(path: Path, data: bytes) -> None:
        calls.append(path)
        if len(calls) == failing:
            raise OSError(
                errno.ENOSPC, os.strerror(errno.ENOSPC), str(path.with_name(f".{path.name}.x.part"))
            )
        real(path, data)

    monkeypatch.setattr(annotated, "atomic_write_bytes", fill_up)
    ran = cli("yolo", "image", photos, "-o", out, *model_args(fake_yolo))
    assert ran.code == 2, ran.stderr[-2000:]
    line = one_line_error(ran)
    assert "No space left on device" in line and "--resume" in line and "unexpected" not in line
    assert len(records(out / "results.jsonl")) == failing - 1
    monkeypatch.setattr(annotated, "atomic_write_bytes", real)
    again = cli("yolo", "image", photos, "-o", out, "--resume", *model_args(fake_yolo))
    assert again.code == 0, again.stderr[-2000:]
    assert sorted(r["source"] for r in records(out / "results.jsonl")) == sorted(
        str(photos / f"{i}.jpg") for i in range(3)
    )
    assert sorted(p.name for p in (out / "photos").iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]


def test_inputs_that_would_share_an_output_each_get_their_own(fake_yolo: Path, tmp_path: Path) -> None:
    """x.jpg beside x.png (one labels/x.txt) and y.jpg beside y.JPG (one annotated y.jpg): every input
    gets its own label file and annotated picture (the picture of its own size), the names hold on a
    case-insensitive file system, and a resumed run writes nothing new."""
    import cv2

    photos, out = tmp_path / "photos", tmp_path / "out"
    sizes = {"x.jpg": (64, 80), "x.png": (72, 96), "y.jpg": (80, 64), "y.JPG": (96, 72), "z.jpg": (64, 64)}
    for i, (name, size) in enumerate(sizes.items()):
        make_image(photos / name, i, size=size)
    before = snapshot(photos)
    ran = cli("yolo", "image", photos, "-o", out, "-f", "txt", *model_args(fake_yolo))
    assert ran.code == 0, ran.stderr[-2000:]
    assert_unchanged(before, snapshot(photos))
    labels = sorted(p.relative_to(out / "labels").as_posix() for p in (out / "labels").rglob("*.txt"))
    # y.jpg and y.JPG keep their suffixes and still differ only by case: the later (sorted) gets -2
    assert labels == [
        "photos/x.jpg.txt",
        "photos/x.png.txt",
        "photos/y-2.jpg.txt",
        "photos/y.JPG.txt",
        "photos/z.txt",
    ]
    drawn = {p.name: cv2.imread(str(p)).shape[:2] for p in (out / "photos").iterdir()}
    assert drawn == {
        "x.jpg.jpg": sizes["x.jpg"],
        "x.png.png": sizes["x.png"],
        "y-2.jpg.jpg": sizes["y.jpg"],
        "y.JPG.jpg": sizes["y.JPG"],
        "z.jpg": sizes["z.jpg"],
    }
    assert len({name.casefold() for name in drawn}) == len(drawn)
    written = snapshot(out)
    again = cli("yolo", "image", photos, "-o", out, "-f", "txt", "--resume", *model_args(fake_yolo))
    assert again.code == 0, again.stderr[-2000:]
    assert snapshot(out) == written


def test_coco_ids_never_merge_two_images_and_survive_a_resume(fake_yolo: Path, tmp_path: Path) -> None:
    """a/1.jpg, b/001.jpg, b/1.jpg (one number), cat.jpg (once given its position: 1 or 2) and ².jpg
    (int() of a Unicode digit crashed the tables): one image_id per picture, the one its record holds;
    a resumed run over an added and a changed picture keeps every id and gives new ones."""
    photos, out = tmp_path / "photos", tmp_path / "out"
    names = ["a/1.jpg", "b/001.jpg", "b/1.jpg", "cat.jpg", "\u00b2.jpg"]
    for i, name in enumerate(names):
        make_image(photos / name, i)

    def ids_by_file() -> dict[str, int]:
        table = json.loads((out / "coco_results.json").read_text())
        by_id: dict[int, set[str]] = {}
        for d in table:
            by_id.setdefault(d["image_id"], set()).add(d["file_name"])
        assert all(len(files) == 1 for files in by_id.values()), by_id  # no two pictures merged
        by_file = {next(iter(files)): i for i, files in by_id.items()}
        assert by_file == {r["source"]: r["image_id"] for r in records(out / "results.jsonl")}
        return by_file

    ran = cli("yolo", "image", photos, "-o", out, "-f", "coco", *model_args(fake_yolo))
    assert ran.code == 0, ran.stderr[-2000:]
    first = ids_by_file()
    assert len(first) == len(names) and first[str(photos / "a" / "1.jpg")] == 1
    make_image(photos / "c" / "1.jpg", 9)
    make_image(photos / "cat.jpg", 10)  # changed: redone
    again = cli("yolo", "image", photos, "-o", out, "-f", "coco", "--resume", *model_args(fake_yolo))
    assert again.code == 0, again.stderr[-2000:]
    second = ids_by_file()
    assert {k: second[k] for k in first} == first and len(second) == len(names) + 1
