from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import PurePosixPath

import numpy as np
import pytest

from detect_cli.results import ImageResult
from detect_cli.threads import ThreadedSink, read_ahead
from detect_cli.writers import Sink


def test_read_ahead_keeps_order_and_runs_ahead() -> None:
    produced: list[int] = []

    def items() -> Iterator[int]:
        for i in range(10):
            produced.append(i)
            yield i

    it = read_ahead(items(), depth=3)
    assert next(it) == 0
    deadline = time.monotonic() + 5
    while len(produced) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert 4 <= len(produced) <= 5, "the producer runs ahead, but no further than the queue holds"
    assert [0, *it] == list(range(10))


def test_read_ahead_reraises_the_producers_error_after_its_items() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise ValueError("bad packet")

    got = []
    with pytest.raises(ValueError, match="bad packet"):
        for i in read_ahead(items()):
            got.append(i)
    assert got == [1]


def test_closing_read_ahead_early_stops_and_closes_the_producer() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    it = read_ahead(endless(), depth=2)
    assert [next(it), next(it)] == [0, 1]
    it.close()
    assert closed.wait(2), "the producer's generator was closed, releasing what it held"


class _Recorder(Sink):
    def __init__(self, fail_at: int | None = None, gate: threading.Event | None = None) -> None:
        self.seen: list[str] = []
        self.thread_names: set[str] = set()
        self.closed = False
        self.attempts = 0
        self._fail_at = fail_at
        self._gate = gate

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        if self._gate:
            assert self._gate.wait(5)
        self.attempts += 1
        if len(self.seen) == self._fail_at:
            raise OSError("disk full")
        self.seen.append(result.source)
        self.thread_names.add(threading.current_thread().name)

    def close(self) -> None:
        self.closed = True


def _result(i: int) -> ImageResult:
    return ImageResult(str(i), "m")


def test_threaded_sink_writes_everything_in_order_in_another_thread() -> None:
    gate = threading.Event()
    inner = _Recorder(gate=gate)  # every write blocks until the gate opens
    sink = ThreadedSink(inner, depth=2)
    for i in range(3):  # one in the worker, two queued: none waits for a write to finish
        sink.write(_result(i), PurePosixPath(f"{i}.jpg"), None)
    assert inner.seen == []
    gate.set()
    sink.close()  # waits for every queued write
    assert inner.seen == ["0", "1", "2"] and inner.closed
    assert inner.thread_names and threading.current_thread().name not in inner.thread_names


def test_threaded_sink_reraises_the_first_error_once_and_drops_later_writes() -> None:
    inner = _Recorder(fail_at=1)
    sink = ThreadedSink(inner)
    sink.write(_result(0), PurePosixPath("x.jpg"), None)
    sink.write(_result(1), PurePosixPath("x.jpg"), None)  # fails in the background thread
    deadline = time.monotonic() + 2
    while inner.attempts < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(OSError, match="disk full"):
        sink.write(_result(2), PurePosixPath("x.jpg"), None)
    sink.write(_result(3), PurePosixPath("x.jpg"), None)  # reported once; the run decides what to do
    sink.close()
    assert inner.seen == ["0"] and inner.attempts == 2 and inner.closed


def test_threaded_sink_error_surfaces_at_close() -> None:
    inner = _Recorder(fail_at=0)
    sink = ThreadedSink(inner)
    sink.write(_result(0), PurePosixPath("x.jpg"), None)
    with pytest.raises(OSError, match="disk full"):
        sink.close()
    assert inner.closed
