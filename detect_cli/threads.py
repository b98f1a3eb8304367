"""Work moved to background threads behind bounded queues, so decoding, inference and writing overlap.

`prefetch` maps a function over items in a few threads, in order (reading and decoding images);
`read_ahead` runs an iterator in a thread (a video decoder, say) and hands its items over as they come;
`ThreadedSink` does a sink's writes (drawing and encoding video, say) in a thread behind the run loop.
Queues are bounded, so a slow stage holds the others back instead of filling memory; errors raised in a
thread are re-raised in the caller's thread.

Every thread is a daemon and no consumer waits on one without looking at the run's `Stop` flag: a
reader blocked for ever (a stuck network mount, a server that stops answering) is left behind, and
neither Ctrl-C nor the process's exit waits for it.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, TypeVar

from detect_cli.results import ImageResult
from detect_cli.writers import Failure, Sink

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")
R = TypeVar("R")
POLL_S = 0.1  # how often a waiting consumer looks at the stop flag

_DONE = object()  # end of a queue's items


class _Failure:
    """An exception raised in a worker thread, carried to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put(q: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Put unless asked to stop; a full queue is retried so a stop request is noticed within 0.1 s."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class _Slot:
    """One call's outcome, filled in by a worker thread."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: object = None
        self.error: BaseException | None = None


def _wait(done: threading.Event, stop: threading.Event | None) -> bool:
    """Wait until `done`; False when the run is asked to stop first."""
    while not done.wait(POLL_S):
        if stop is not None and stop.is_set():
            return False
    return True


def prefetch(
    items: Iterable[T],
    fn: Callable[[T], R],
    depth: int = 4,
    workers: int = 2,
    stop: threading.Event | None = None,
    name: str = "detect-read",
) -> Iterator[R]:
    """map(fn, items) with up to `depth` calls running ahead in `workers` daemon threads; results come
    in input order. When `stop` is set while a result is awaited, the iteration ends there."""
    tasks: queue.SimpleQueue[tuple[_Slot, T] | None] = queue.SimpleQueue()
    closed = threading.Event()

    def work() -> None:
        while (task := tasks.get()) is not None and not closed.is_set():
            slot, item = task
            try:
                slot.value = fn(item)
            except BaseException as e:  # handed to the consumer, which re-raises it
                slot.error = e
            slot.done.set()

    for i in range(workers):
        threading.Thread(target=work, name=f"{name}-{i}", daemon=True).start()
    window: deque[_Slot] = deque()

    def take() -> tuple[bool, R]:
        """(False, _) when asked to stop before the oldest call finished; else (True, its result)."""
        slot = window.popleft()
        if not _wait(slot.done, stop):
            return False, None  # type: ignore[return-value]
        if slot.error is not None:
            raise slot.error
        return True, slot.value  # type: ignore[return-value]

    try:
        for item in items:
            window.append(_Slot())
            tasks.put((window[-1], item))
            while len(window) >= depth:
                ok, value = take()
                if not ok:
                    return
                yield value
        while window:
            ok, value = take()
            if not ok:
                return
            yield value
    finally:
        closed.set()
        for _ in range(workers):
            tasks.put(None)


def read_ahead(
    items: Iterable[T],
    depth: int = 8,
    name: str = "detect-read-ahead",
    stop: threading.Event | None = None,
) -> Iterator[T]:
    """Iterate `items` in a background thread, up to `depth` items ahead of the consumer.

    Closing the returned generator early (a `break`, Ctrl-C, an error downstream) stops the thread;
    when `stop` is set while the consumer waits for an item, the iteration ends there.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    outer_stop, stop = stop, threading.Event()

    source = iter(items)

    def produce() -> None:
        try:
            for item in source:
                if not _put(q, item, stop):
                    return
        except BaseException as e:  # handed to the consumer, which re-raises it
            _put(q, _Failure(e), stop)
            return
        finally:
            close = getattr(source, "close", None)
            if close:  # a generator: run its cleanup (release a capture, say) in this thread
                close()
        _put(q, _DONE, stop)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = q.get(timeout=POLL_S)
            except queue.Empty:
                if outer_stop is not None and outer_stop.is_set():
                    return
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=2)  # a producer stuck in a blocking read is a daemon and is left behind


class ThreadedSink(Sink):
    """Wraps any sink so its writes happen in a background thread, up to `depth` results behind.

    `write` only queues (blocking while the queue is full); `close` waits for every queued write, then
    closes the wrapped sink, so an interrupted run still gets all it handed over. The first error from
    the wrapped sink is re-raised by the next `write` or by `close`; later writes are dropped.
    """

    def __init__(self, inner: Sink, depth: int = 8) -> None:
        self.inner = inner
        self._q: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._reported = False
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=f"detect-{type(inner).__name__}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._q.get()
            if item is _DONE:
                return
            if self._error is not None:
                continue  # keep draining so the run loop never blocks on a dead sink
            try:
                self.inner.write(*item)  # type: ignore[misc]
            except BaseException as e:
                self._error = e

    def _raise_pending(self) -> None:
        if self._error is not None and not self._reported:
            self._reported = True
            raise self._error

    def write(self, result: ImageResult, rel_path: PurePosixPath, image: np.ndarray | None) -> None:
        self._raise_pending()
        self._q.put((result, rel_path, image))

    def failures(self) -> list[Failure]:
        return self.inner.failures()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._q.put(_DONE)
        self._thread.join()
        try:
            self._raise_pending()
        finally:
            self.inner.close()
