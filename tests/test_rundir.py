"""The run folder: numbered or given, one run at a time (a real lock, a real second process), and never
overlapping the inputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
from conftest import make_image

from detect_cli.errors import OutputError
from detect_cli.rundir import DEFAULT_RUNS_DIR, check_plan, planned_folder, run_folder
from detect_cli.sources import RUN_MARKER, ImageInput, discover_images


def test_new_folders_are_numbered_and_never_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    names = []
    for _ in range(3):
        with run_folder(None, "image") as out:
            names.append(out.name)
    assert names == ["image", "image-2", "image-3"]
    with run_folder(None, "image", exist_ok=True) as out:
        assert out == DEFAULT_RUNS_DIR / "image"


@pytest.mark.parametrize(
    ("record", "asked", "refused"),
    [
        ("results.jsonl", "results.jsonl", True),
        ("frames.jsonl", "results.jsonl", False),  # a video run's record is another file
        ("frames.jsonl", "frames.jsonl", True),
    ],
)
def test_a_folder_holding_a_run_needs_exist_ok(
    tmp_path: Path, record: str, asked: str, refused: bool
) -> None:
    (tmp_path / record).write_text("")
    if refused:
        with pytest.raises(OutputError, match="--exist-ok"), run_folder(tmp_path, "x", record=asked):
            pass
    else:
        with run_folder(tmp_path, "x", record=asked) as out:
            assert out == tmp_path
    with run_folder(tmp_path, "x", exist_ok=True, record=asked) as out:
        assert out == tmp_path


HOLD = """
import sys, time
from pathlib import Path
from detect_cli.rundir import run_folder
with run_folder(Path(sys.argv[1]), "x", exist_ok=True):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_process_is_refused_while_the_first_holds_the_folder(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputError, match=rf"in use by another detect run \(pid {holder.pid}\)"):
            with run_folder(tmp_path, "x", exist_ok=True):
                pass
    finally:
        holder.kill()
        holder.wait(10)
    with run_folder(tmp_path, "x", exist_ok=True):  # the lock went with the process
        assert (tmp_path / RUN_MARKER).read_text().strip() == str(os.getpid())


def _inputs(root: Path) -> list[ImageInput]:
    return discover_images([str(root)])


def test_plan_refuses_an_output_on_an_input_even_through_a_symlink(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    make_image(photos / "a.jpg")
    items = _inputs(photos)
    with pytest.raises(OutputError, match="would overwrite the input"):
        check_plan(tmp_path, [str(photos)], items, [tmp_path / "photos" / "a.jpg"])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(photos)
    with pytest.raises(OutputError, match="would overwrite the input"):
        check_plan(tmp_path / "out", [str(photos)], items, [tmp_path / "out" / "link" / "a.jpg"])


def test_plan_refuses_a_stranger_file_but_not_an_earlier_run(tmp_path: Path) -> None:
    make_image(tmp_path / "images" / "x.jpg")
    items = _inputs(tmp_path / "images")
    labels = tmp_path / "labels" / "x.txt"
    labels.parent.mkdir()
    labels.write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(OutputError, match="which no detect run wrote"):
        check_plan(tmp_path, [str(tmp_path / "images")], items, [labels])
    (tmp_path / RUN_MARKER).write_text("")  # the folder holds an earlier run: its files may be replaced
    check_plan(tmp_path, [str(tmp_path / "images")], items, [labels])


def test_plan_refuses_out_equal_to_a_source_folder(tmp_path: Path) -> None:
    make_image(tmp_path / "a.jpg")
    with pytest.raises(OutputError, match="is a source folder"):
        check_plan(tmp_path, [str(tmp_path)], _inputs(tmp_path), [])


def test_planned_folder() -> None:
    assert planned_folder(Path("x"), "image", False) == Path("x")
    assert planned_folder(None, "image", True) == DEFAULT_RUNS_DIR / "image"
    assert planned_folder(None, "image", False) is None  # a new numbered folder holds nothing


def test_discovery_skips_run_folders_and_the_out_folder(tmp_path: Path) -> None:
    make_image(tmp_path / "a.jpg")
    make_image(tmp_path / "out" / "a.jpg")  # this run's --out, inside the source
    make_image(tmp_path / "old" / "b.jpg")  # an earlier run's folder
    (tmp_path / "old" / RUN_MARKER).write_text("")
    found = discover_images([str(tmp_path)], exclude=[tmp_path / "out"])
    assert [i.rel_path for i in found] == [PurePosixPath(tmp_path.name, "a.jpg")]
    globbed = discover_images([str(tmp_path / "**" / "*.jpg")], exclude=[tmp_path / "out"])
    assert [Path(i.source).name for i in globbed] == ["a.jpg"]


OWN_FILES = [RUN_MARKER, "results.jsonl", "results.jsonl.rejected", ".results.jsonl.compact.part"]


@pytest.mark.parametrize("name", OWN_FILES)
def test_a_link_at_a_bookkeeping_path_is_refused_and_its_target_kept(tmp_path: Path, name: str) -> None:
    """A symbolic link where the run keeps its own files (to an input, or to anything else): refused in
    one OutputError before anything is written, by the plan and by the folder itself; the target keeps
    its bytes."""
    photo = make_image(tmp_path / "in" / "a.jpg")
    data = photo.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    (out / name).symlink_to(photo)
    with pytest.raises(OutputError, match=r"is a symbolic link \(to .*a\.jpg\).*never\s+through one"):
        check_plan(out, [str(photo)], _inputs(photo), [out / "a.jpg"])
    for exist_ok in (False, True):
        with pytest.raises(OutputError, match="is a symbolic link"), run_folder(out, "x", exist_ok=exist_ok):
            pass
    assert photo.read_bytes() == data


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_folder_or_fifo_at_a_bookkeeping_path_is_refused(tmp_path: Path, kind: str) -> None:
    for name in OWN_FILES:
        out = tmp_path / f"{kind}-{name}"
        out.mkdir()
        (out / name).mkdir() if kind == "folder" else os.mkfifo(out / name)
        with pytest.raises(OutputError, match=f"is a {'folder' if kind == 'folder' else 'FIFO'}"):
            check_plan(out, [], [], [])
        with pytest.raises(OutputError), run_folder(out, "x", exist_ok=True):
            pass


def test_own_files_are_opened_without_following_a_link(tmp_path: Path) -> None:
    """The backstop for a link made after the check: `open_own` never opens through it, nor waits on a
    FIFO (whose open for reading would block forever without a writer)."""
    from detect_cli.rundir import open_own

    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(OutputError, match="symbolic link"):
        open_own(tmp_path / "link", os.O_WRONLY | os.O_TRUNC)
    assert target.read_bytes() == b"keep me"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OutputError, match="FIFO"):
        open_own(tmp_path / "fifo", os.O_RDONLY)
    with pytest.raises(OutputError, match="FIFO"):
        open_own(tmp_path / "fifo", os.O_WRONLY)


def test_a_hard_link_from_a_bookkeeping_path_to_an_input_is_refused(tmp_path: Path) -> None:
    photo = make_image(tmp_path / "in" / "a.jpg")
    out = tmp_path / "out"
    out.mkdir()
    os.link(photo, out / RUN_MARKER)
    with pytest.raises(OutputError, match=r"would overwrite the input .*a\.jpg \(as .*\.detect\.lock\)"):
        check_plan(out, [str(photo)], _inputs(photo), [])


def test_a_run_that_fails_before_writing_leaves_no_folder_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start that fails inside the run folder (Ray out of reach, a model that will not load) left the
    folder it made holding only `.detect.lock`; now the folders it made go, and only those."""
    out = tmp_path / "new" / "deeper" / "out"
    with pytest.raises(OutputError, match="no cluster"), run_folder(out, "image"):
        assert (out / RUN_MARKER).exists()
        raise OutputError("no cluster")
    assert sorted(os.listdir(tmp_path)) == []  # new/deeper/out: all made by the run, all gone
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KeyboardInterrupt), run_folder(None, "image"):
        raise KeyboardInterrupt
    assert not DEFAULT_RUNS_DIR.exists()

    kept = tmp_path / "kept"
    kept.mkdir()  # the user's folder, there before the run: it stays, without the run's lock
    with pytest.raises(OutputError), run_folder(kept, "image"):
        raise OutputError("no cluster")
    assert kept.is_dir() and os.listdir(kept) == [RUN_MARKER]
    wrote = tmp_path / "wrote"
    with pytest.raises(OutputError), run_folder(wrote, "image"):
        (wrote / "results.jsonl").write_text("")
        raise OutputError("disk full")
    assert sorted(os.listdir(wrote)) == [RUN_MARKER, "results.jsonl"]  # what was written stays
