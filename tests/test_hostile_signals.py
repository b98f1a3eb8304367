"""Issue 10 in real processes: hangs (FIFO, a server that drips), signals (SIGTERM, Ctrl-C while a read
is stuck), two runs into one folder, memory under a PNG bomb, and what reaches the terminal (libpng,
compare). Every child has a timeout: a regression fails the test instead of hanging the suite.
The children run the CLI on the fake detector (tests/fake_cli.py): no torch, no model to load.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import QuietServer, make_image, make_video, read_video
from test_hostile import (
    PNG_SIGNATURE,
    assert_unchanged,
    by_name,
    child_env,
    cli,
    detect_argv,
    good_images,
    model_args,
    no_traceback,
    one_line_error,
    png_chunk,
    png_ihdr,
    records,
    snapshot,
    sub,
)

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="os.mkfifo: no FIFOs on this platform")


# ------------------------------------------------------------------------------- a hostile web server
@dataclass
class Server:
    base: str
    dripping: threading.Event  # set when a /drip request has arrived and its headers are sent


@pytest.fixture
def hostile_server(tmp_path: Path) -> Iterator[Server]:
    """127.0.0.1 server: /ok.jpg a good picture; /drip.jpg promises 1000 bytes and sends one each
    0.5 s; /loop.jpg redirects (301) to itself. Daemon threads, stopped at teardown."""
    good = make_image(tmp_path / "www" / "ok.jpg").read_bytes()
    stop, dripping = threading.Event(), threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                if self.path.startswith("/drip"):
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    dripping.set()
                    for _ in range(1000):
                        if stop.wait(0.5):
                            return
                        self.wfile.write(b"\xff")
                elif self.path.startswith("/loop"):
                    self.send_response(301)
                    self.send_header("Location", self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path == "/ok.jpg":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(good)))
                    self.end_headers()
                    self.wfile.write(good)
                else:
                    self.send_error(404)
            except OSError:  # the client gave up: that is the point
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.start()
    try:
        yield Server(f"http://127.0.0.1:{server.server_address[1]}", dripping)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def spawn(*argv: object, cwd: Path | None = None, delay: float = 0.0) -> subprocess.Popen[bytes]:
    """`detect ...` in a real process (the fake detector, `delay` s per picture); its stderr goes to an
    unnamed temporary file (a pipe nobody reads could fill up and stall the child), read back by `finish`."""
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        detect_argv(*argv), cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, env=child_env(delay)
    )
    proc.err_file = err  # type: ignore[attr-defined]
    return proc


def stderr_of(proc: subprocess.Popen[bytes]) -> str:
    err = proc.err_file  # type: ignore[attr-defined]
    err.seek(0)
    return err.read().decode("utf-8", "replace")


def finish(proc: subprocess.Popen[bytes], timeout: float, what: str) -> tuple[int, str]:
    """(exit code, stderr) of a child expected to end within `timeout` s; killed (test fails) if not."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"hang: {what}: still running after {timeout}s\n{stderr_of(proc)[-1500:]}")
    return proc.returncode, stderr_of(proc)


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None) -> None:  # type: ignore[no-untyped-def]
    """Poll until `condition()`; fail if it takes longer than `timeout` s or `proc` ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}\n{stderr_of(proc)[-1500:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout}s")
        time.sleep(0.02)


def line_count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def leftovers(out: Path) -> list[str]:
    return [str(p) for p in out.rglob("*") if p.name.endswith(".part") or ".part." in p.name]


@pytest.fixture
def stopper() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Children a test started: killed at teardown if still running."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------------------ 6: FIFOs
@needs_fifo
def test_fifo_in_a_folder_is_recorded_not_waited_on(fake_yolo: Path, tmp_path: Path) -> None:
    """A FIFO named x.jpg among 2 good images: recorded as "not a regular file", the run ends (exit 1)
    instead of blocking forever in open()."""
    folder, out = tmp_path / "in", tmp_path / "out"
    good_images(folder, 2)
    os.mkfifo(folder / "x.jpg")
    before = snapshot(tmp_path, out)
    ran = sub("yolo", "image", folder, "-o", out, *model_args(fake_yolo), timeout=60)
    no_traceback(ran)
    assert ran.code == 1, ran.stderr[-2000:]
    named = by_name(records(out / "results.jsonl"))
    assert set(named) == {"good0.jpg", "good1.jpg", "x.jpg"}
    assert "not a regular file" in named["x.jpg"]["error"]
    assert named["good0.jpg"]["error"] is None and named["good1.jpg"]["error"] is None
    assert_unchanged(before, snapshot(tmp_path, out))


@needs_fifo
def test_fifo_given_as_the_source_ends(fake_yolo: Path, tmp_path: Path) -> None:
    """A FIFO given directly as SOURCE: no hang, "not a regular file" said (on stderr or in its record)."""
    fifo, out = tmp_path / "x.jpg", tmp_path / "out"
    os.mkfifo(fifo)
    before = snapshot(tmp_path, out)
    ran = sub("yolo", "image", fifo, "-o", out, *model_args(fake_yolo), timeout=60)
    no_traceback(ran)
    assert ran.code in (1, 2), ran.stderr[-2000:]
    said = ran.stderr
    if (out / "results.jsonl").exists():
        said += "".join(str(r["error"]) for r in records(out / "results.jsonl"))
    assert "not a regular file" in said, said[-2000:]
    assert_unchanged(before, snapshot(tmp_path, out))


# ------------------------------------------------------------------------------------ 7-8: URL faults
def test_url_has_a_total_deadline(hostile_server: Server, fake_yolo: Path, tmp_path: Path) -> None:
    """A server that sends 1 byte per 0.5 s never trips a per-read timeout; --url-timeout 2 bounds the
    whole download: that input fails "timed out", the good URL beside it is processed, exit 1."""
    out = tmp_path / "out"
    drip, ok = f"{hostile_server.base}/drip.jpg", f"{hostile_server.base}/ok.jpg"
    before = snapshot(tmp_path, out)
    ran = sub("yolo", "image", drip, ok, "--url-timeout", "2", "-o", out, *model_args(fake_yolo), timeout=60)
    no_traceback(ran)
    assert ran.code == 1, ran.stderr[-2000:]
    assert ran.elapsed < 20, f"took {ran.elapsed:.1f}s with --url-timeout 2"
    errors = {r["source"]: r["error"] for r in records(out / "results.jsonl")}
    assert errors.keys() == {drip, ok}
    assert "timed out" in errors[drip] and errors[ok] is None
    assert_unchanged(before, snapshot(tmp_path, out))


def test_redirect_loop_is_a_one_line_error(hostile_server: Server, fake_yolo: Path, tmp_path: Path) -> None:
    """A 301 to itself: that input's error is one line that says "redirect"; the good URL is processed."""
    out = tmp_path / "out"
    loop, ok = f"{hostile_server.base}/loop.jpg", f"{hostile_server.base}/ok.jpg"
    ran = cli("yolo", "image", loop, ok, "--url-timeout", "5", "-o", out, *model_args(fake_yolo))
    no_traceback(ran)
    assert ran.code == 1, ran.stderr[-2000:]
    errors = {r["source"]: r["error"] for r in records(out / "results.jsonl")}
    assert errors.keys() == {loop, ok} and errors[ok] is None
    assert "redirect" in errors[loop] and "\n" not in errors[loop], errors[loop]


# ------------------------------------------------------------------------ 13: Ctrl-C while read blocks
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_stops_while_a_download_is_stuck(
    presses: int, hostile_server: Server, fake_yolo: Path, tmp_path: Path, stopper: list
) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C while a reader is blocked on a dripping server (--url-timeout 60): one press ends the run
    within 5 s with exit 130 (it does not wait for the stuck download); two presses 0.3 s apart end it
    within 3 s."""
    out = tmp_path / "out"
    proc = spawn(
        "yolo",
        "image",
        f"{hostile_server.base}/drip.jpg",
        "--url-timeout",
        "60",
        "-o",
        out,
        *model_args(fake_yolo),
    )
    stopper.append(proc)
    wait_for(hostile_server.dripping.is_set, 60, "the download started", proc)
    time.sleep(1.0)  # the reader is now blocked between two bytes
    proc.send_signal(signal.SIGINT)
    if presses == 2:
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
    code, err = finish(proc, 5 if presses == 1 else 3, f"{presses} Ctrl-C with a stuck download")
    assert "Traceback" not in err, err[-2000:]
    assert code == 130 if presses == 1 else code in (130, -signal.SIGINT), err[-2000:]
    if (out / "results.jsonl").exists():
        records(out / "results.jsonl")  # whatever was written is valid


# --------------------------------------------------------------------------- 9: one writer per folder
def test_second_run_into_a_folder_in_use_is_refused(
    hostile_server: Server, fake_yolo: Path, tmp_path: Path, stopper: list
) -> None:  # type: ignore[no-untyped-def]
    """While run A writes into X (held up by a dripping URL), `--exist-ok` and `--resume` runs into X
    are refused at once (exit 2, one line, "in use", A's pid) and leave A's record alone; A's
    results.jsonl stays valid; once A has ended, the same run is accepted."""
    folder, out, other = tmp_path / "in", tmp_path / "X", tmp_path / "other"
    good_images(folder, 8)
    good_images(other, 1, prefix="b")
    before = snapshot(tmp_path, out)
    proc = spawn(
        "yolo",
        "image",
        folder,
        f"{hostile_server.base}/drip.jpg",
        "--url-timeout",
        "20",
        "-o",
        out,
        *model_args(fake_yolo),
    )
    stopper.append(proc)
    wait_for(hostile_server.dripping.is_set, 60, "run A reached the dripping URL", proc)
    wait_for((out / ".detect.lock").exists, 3, "run A holds X/.detect.lock", proc)

    for flag in ("--exist-ok", "--resume"):
        record = (out / "results.jsonl").read_bytes() if (out / "results.jsonl").exists() else b""
        started = time.monotonic()
        b = cli("yolo", "image", other, "-o", out, flag, *model_args(fake_yolo))
        assert b.code == 2, f"{flag}: {b.stderr[-2000:]}"
        line = one_line_error(b)
        assert "in use" in line and str(proc.pid) in line, line
        assert time.monotonic() - started < 10
        assert proc.poll() is None, "A must still be running: B was refused while A held the folder"
        assert (out / "results.jsonl").read_bytes().startswith(record), f"{flag} rewrote A's record"

    proc.send_signal(signal.SIGINT)
    code, err = finish(proc, 30, "run A after Ctrl-C")
    assert code in (0, 1, 130), err[-2000:]
    assert "Traceback" not in err
    rows = records(out / "results.jsonl")
    sources = [r["source"] for r in rows]
    assert len(sources) == len(set(sources)) and 1 <= len(rows) <= 9
    assert set(sources) <= {str(p) for p in folder.iterdir()} | {f"{hostile_server.base}/drip.jpg"}

    after = cli("yolo", "image", other, "-o", out, "--exist-ok", *model_args(fake_yolo))
    no_traceback(after)
    assert after.code == 0, after.stderr[-2000:]
    assert records(out / "results.jsonl")[-1]["source"] == str(other / "b0.jpg")
    assert_unchanged(before, snapshot(tmp_path, out))


# ------------------------------------------------------------------------------- 12: SIGTERM = Ctrl-C
def test_sigterm_finalizes_the_video(fake_yolo: Path, tmp_path: Path, stopper: list) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM (docker stop, systemd, timeout) during `detect video` takes Ctrl-C's path: exit 143, the
    annotated video finalized with as many frames as frames.jsonl records, no .part file left."""
    from detect_cli.video import pick_codec

    clip, out = make_video(tmp_path / "in" / "clip.mp4", frames=400), tmp_path / "X"
    before = snapshot(tmp_path, out)
    proc = spawn("yolo", "video", clip, "-o", out, *model_args(fake_yolo), delay=0.02)
    stopper.append(proc)
    wait_for(lambda: line_count(out / "frames.jsonl") >= 3, 90, "3 frames recorded", proc)
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc, 30, "detect video after SIGTERM")
    assert "Traceback" not in err, err[-2000:]
    assert code == 143, err[-2000:]
    rows = records(out / "frames.jsonl")
    assert 3 <= len(rows) < 400 and [r["frame"] for r in rows] == list(range(len(rows)))
    assert read_video(out / f"clip{pick_codec().suffix}")[0] == len(rows)
    assert not leftovers(out)
    assert_unchanged(before, snapshot(tmp_path, out))


def test_sigterm_on_an_image_run_keeps_every_record(fake_yolo: Path, tmp_path: Path, stopper: list) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM during `detect image` on a folder: exit 143, every written record valid JSON, each input
    at most once, no .part file left."""
    folder, out = tmp_path / "in", tmp_path / "X"
    good_images(folder, 80)
    before = snapshot(tmp_path, out)
    argv = ["yolo", "image", folder, "-f", "csv", "-f", "coco", "-o", out, *model_args(fake_yolo)]
    proc = spawn(*argv, delay=0.05)
    stopper.append(proc)
    wait_for(lambda: line_count(out / "results.jsonl") >= 1, 90, "a first record", proc)
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc, 30, "detect image after SIGTERM")
    assert "Traceback" not in err, err[-2000:]
    assert code == 143, err[-2000:]
    rows = records(out / "results.jsonl")
    sources = [r["source"] for r in rows]
    assert 1 <= len(rows) < 80 and len(set(sources)) == len(sources)
    assert all(r["error"] is None for r in rows)
    assert not leftovers(out)
    assert_unchanged(before, snapshot(tmp_path, out))


# ------------------------------------------------------------------------------ 4: memory, PNG bomb
def png_bomb(path: Path, side: int) -> Path:
    """A valid all-black greyscale PNG of side x side, streamed through zlib (a few hundred KB on disk,
    side² bytes once decoded)."""
    comp = zlib.compressobj(6)
    row = b"\x00" * (side + 1)  # filter byte + one row of black
    idat = bytearray()
    for _ in range(side):
        idat += comp.compress(row)
    idat += comp.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        PNG_SIGNATURE
        + png_ihdr(side, side, color_type=0)
        + png_chunk(b"IDAT", bytes(idat))
        + png_chunk(b"IEND", b"")
    )
    return path


PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:]).returncode\n"
    "print(f'PEAK_RSS_KB {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss} {rc}', file=sys.stderr)\n"
)


def test_png_bomb_is_refused_with_bounded_memory(fake_yolo: Path, tmp_path: Path) -> None:
    """A real 20000x20000 PNG (400 MP, over the 100 MP default budget) beside a good image: refused
    from its header ("pixels"), the good one processed, exit 1, and the run's peak RSS stays under
    1 GiB (measured on the child alone, through a wrapper process). The child runs the fake detector,
    without torch: about 0.1 GB at peak where a real model's child is about 1 GB, so the bound is 1 GiB
    instead of the 2 GiB it was with a real model: what the bomb may add unnoticed did not grow."""
    folder, out = tmp_path / "in", tmp_path / "out"
    png_bomb(folder / "bomb.png", 20000)
    good_images(folder, 1)
    before = snapshot(tmp_path, out)
    argv = [
        sys.executable,
        "-c",
        PEAK_RSS,
        *detect_argv("yolo", "image", folder, "--no-save", "-o", out, *model_args(fake_yolo)),
    ]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=240, env=child_env())
    except subprocess.TimeoutExpired:
        pytest.fail("hang: the PNG bomb run did not end within 240 s")
    err = proc.stderr.decode("utf-8", "replace")
    [line] = [x for x in err.splitlines() if x.startswith("PEAK_RSS_KB ")]
    peak_kb, code = (int(v) for v in line.split()[1:])
    assert "Traceback" not in err, err[-2000:]
    named = by_name(records(out / "results.jsonl"))
    assert named.keys() == {"bomb.png", "good0.jpg"}
    assert "pixels" in (named["bomb.png"]["error"] or ""), (named["bomb.png"], f"peak RSS {peak_kb} KiB")
    assert named["good0.jpg"]["error"] is None
    assert code == 1, err[-2000:]
    assert peak_kb < 1024**2, f"peak RSS {peak_kb / 1024**2:.2f} GiB"
    assert_unchanged(before, snapshot(tmp_path, out))


# --------------------------------------------------------------------------- 17-18: the terminal
def test_corrupt_png_does_not_leak_libpng_lines(fake_yolo: Path, tmp_path: Path) -> None:
    """A PNG with a valid signature and header but garbage compressed data: a failed record, and no
    `libpng error:` line from the C library on the terminal (checked on the real fd 2 of a process)."""
    folder, out = tmp_path / "in", tmp_path / "out"
    good_images(folder, 2)
    garbage = bytes(range(7, 250)) * 2
    (folder / "bad.png").write_bytes(
        PNG_SIGNATURE + png_ihdr(64, 64) + png_chunk(b"IDAT", garbage) + png_chunk(b"IEND", b"")
    )
    before = snapshot(tmp_path, out)
    ran = sub("yolo", "image", folder, "-o", out, *model_args(fake_yolo), timeout=120)
    no_traceback(ran)
    assert ran.code == 1, ran.stderr[-2000:]
    assert not [x for x in ran.stderr.splitlines() if x.startswith("libpng")], ran.stderr[-2000:]
    named = by_name(records(out / "results.jsonl"))
    assert named["bad.png"]["error"] and named["good0.jpg"]["error"] is None
    assert_unchanged(before, snapshot(tmp_path, out))


@pytest.mark.parametrize("bad", ["fifo", "broken"])
def test_compare_names_the_input_that_failed(bad: str, fake_models: dict[str, Path], tmp_path: Path) -> None:
    """`detect compare` with a FIFO or a broken picture among the images: no hang, exit 1, and the
    bad file is named on the terminal (not only in report.json)."""
    folder, out = tmp_path / "in", tmp_path / "X"
    good_images(folder, 2)
    if bad == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("os.mkfifo: no FIFOs on this platform")
        name = "pipe.jpg"
        os.mkfifo(folder / name)
    else:
        name = "broken.png"
        (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n not a picture at all")
    before = snapshot(tmp_path, out)
    ran = sub(
        "compare",
        folder,
        *("-m", f"{fake_models['rtdetr']},{fake_models['yolo']}", "--imgsz", "160", "--device", "cpu"),
        *("--warmup", "0", "-o", out),
        "--no-memory",
        timeout=120,
    )
    no_traceback(ran)
    assert ran.code == 1, ran.stderr[-2000:]
    assert name in ran.stderr, ran.stderr[-2000:]
    assert_unchanged(before, snapshot(tmp_path, out))


# ------------------------------------------------------------------- stdout: a sink that can go away
def spawn_into(stdout: int, *argv: object, delay: float = 0.0) -> subprocess.Popen[bytes]:
    """`detect ...` in a real process whose stdout is the file descriptor `stdout`."""
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen(detect_argv(*argv), stdout=stdout, stderr=err, env=child_env(delay))
    proc.err_file = err  # type: ignore[attr-defined]
    return proc


def quiet_exit(err: str) -> None:
    """No traceback, and none of the interpreter's last words about a stdout it could not flush."""
    assert "Traceback" not in err and "Exception ignored" not in err, err[-2000:]
    assert "unexpected" not in err, err[-2000:]


def test_json_reader_that_leaves_stops_the_run_as_ctrl_c(
    fake_yolo: Path, tmp_path: Path, stopper: list
) -> None:  # type: ignore[type-arg]
    """`detect image … --json | head -1`: the reader takes one line and exits. The run stops as on
    Ctrl-C: exit 141 (128 + SIGPIPE), every record complete, each input once, the resume hint on
    stderr; and --resume then finishes it."""
    folder, out = tmp_path / "in", tmp_path / "X"
    good_images(folder, 60)
    argv = ["yolo", "image", folder, "--json", "-f", "csv", "-o", out, *model_args(fake_yolo)]
    err_file = tempfile.TemporaryFile()
    proc = subprocess.Popen(detect_argv(*argv), stdout=subprocess.PIPE, stderr=err_file, env=child_env(0.05))
    proc.err_file = err_file  # type: ignore[attr-defined]
    stopper.append(proc)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # what `head -1` does: one line, then the reader is gone
    proc.stdout.close()
    code, err = finish(proc, 60, "detect image --json after its reader left")
    quiet_exit(err)
    assert code == 141, err[-2000:]
    assert "To resume:" in err, err[-2000:]
    rows = records(out / "results.jsonl")
    sources = [r["source"] for r in rows]
    assert json.loads(first)["source"] == sources[0]
    assert 1 <= len(rows) < 60 and len(set(sources)) == len(sources)
    assert all(r["error"] is None for r in rows)
    assert not leftovers(out)
    assert (out / "results.csv").is_file()  # the tables are built from the records, as after Ctrl-C
    done = sub(*argv[:3], "-o", out, "--resume", *model_args(fake_yolo))
    assert done.code == 0, done.stderr[-2000:]
    finished = [r["source"] for r in records(out / "results.jsonl")]
    assert len(finished) == len(set(finished)) == 60


@pytest.mark.parametrize("command", ["image", "models", "compare"])
def test_json_into_a_pipe_nobody_reads(
    command: str, fake_models: dict[str, Path], tmp_path: Path, stopper: list
) -> None:  # type: ignore[type-arg]
    """Every --json output into a pipe whose reader already left: exit 141, nothing on stderr but the
    run's own lines (no BrokenPipeError, no 'Exception ignored')."""
    folder, out = tmp_path / "in", tmp_path / "X"
    good_images(folder, 3)
    argv: list[object] = {
        "image": ["yolo", "image", folder, "-o", out, *model_args(fake_models["yolo"])],
        "models": ["models"],
        "compare": [
            "compare",
            folder,
            *("-m", f"{fake_models['rtdetr']},{fake_models['yolo']}", "--imgsz", "160", "--device", "cpu"),
            *("--warmup", "0", "--no-memory", "-o", out),
        ],
    }[command]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        proc = spawn_into(write_end, *argv, "--json")
    finally:
        os.close(write_end)
    stopper.append(proc)
    code, err = finish(proc, 120, f"detect {command} --json into a closed pipe")
    quiet_exit(err)
    assert code == 141, err[-2000:]
    if command == "image":
        assert 1 <= len(records(out / "results.jsonl")) <= 3
    if command == "compare":
        assert (out / "report.json").is_file()


def test_json_into_a_closed_stdout_is_refused_before_any_work(fake_yolo: Path, tmp_path: Path) -> None:
    """`detect image … --json >&-`: one error line, exit 2, no run folder; without --json the same
    run works (the closed descriptor is held on /dev/null, so no output file takes its number)."""
    folder, out = tmp_path / "in", tmp_path / "X"
    good_images(folder, 3)
    argv = ["yolo", "image", folder, "-o", out, *model_args(fake_yolo)]
    closed = ["sh", "-c", 'exec "$@" >&-', "sh"]
    ran = subprocess.run(
        [*closed, *detect_argv(*argv, "--json")], capture_output=True, timeout=120, env=child_env()
    )
    err = ran.stderr.decode()
    quiet_exit(err)
    assert ran.returncode == 2, err[-2000:]
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: --json prints on stdout, which is closed: open it, or leave out --json"
    ]
    assert not out.exists()
    ran = subprocess.run([*closed, *detect_argv(*argv)], capture_output=True, timeout=120, env=child_env())
    assert ran.returncode == 0, ran.stderr.decode()[-2000:]
    assert len(records(out / "results.jsonl")) == 3


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this platform")
def test_json_into_a_full_stdout_is_one_error_line(fake_yolo: Path, tmp_path: Path) -> None:
    """`detect image … --json > /dev/full`: every write fails with ENOSPC. One `error:` line, exit 2,
    the records written before are complete."""
    folder, out = tmp_path / "in", tmp_path / "X"
    good_images(folder, 20)
    with open("/dev/full", "wb") as full:
        proc = spawn_into(full.fileno(), "yolo", "image", folder, "--json", "-o", out, *model_args(fake_yolo))
    code, err = finish(proc, 120, "detect image --json > /dev/full")
    quiet_exit(err)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, err[-2000:]
    assert "No space left on device" in errors[0]
    rows = records(out / "results.jsonl")
    assert 1 <= len(rows) <= 20 and all(r["error"] is None for r in rows)
    assert not leftovers(out)
