"""Work moved to background threads behind bounded queues, so decoding, inference and writing overlap.

`read_ahead` runs an iterator in a thread (a video decoder, say) and hands its items over as they come;
`ThreadedSink` does a sink's writes (drawing and encoding video, say) in a thread behind the run loop.
Queues are bounded, so a slow stage holds the others back instead of filling memory; errors raised in a
thread are re-raised in the caller's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, TypeVar

from detect_cli.results import ImageResult
from detect_cli.writers import Sink

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")

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


def read_ahead(items: Iterable[T], depth: int = 8, name: str = "detect-read-ahead") -> Iterator[T]:
    """Iterate `items` in a background thread, up to `depth` items ahead of the consumer.

    Closing the returned generator early (a `break`, Ctrl-C, an error downstream) stops the thread.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

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
            item = q.get()
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
