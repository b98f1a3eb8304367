"""One stop mechanism for every command: Ctrl-C (SIGINT) and SIGTERM (`kill`, `docker stop`, systemd,
`timeout`) alike.

The first signal sets a `Stop` flag: the run finishes the work in hand, finalizes its outputs (a video is
closed and playable, every record is written) and ends with exit code 128 + the signal's number (130
for Ctrl-C, 143 for SIGTERM). Waiting loops (reading ahead, downloads) check the flag, so a reader
stuck on a slow disk or server never holds the stop back. A second signal raises `Interrupted` at once.
Code can ask for the same stop (`request_stop`): a `--json` reader that closed stdout stops the run as
SIGPIPE would, with exit code 141.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Generator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
SIGPIPE: int = getattr(signal, "SIGPIPE", 13)  # a closed stdout ends a run as this signal would


class Interrupted(KeyboardInterrupt):
    """A second stop signal: stop at once. `signum` says which signal it was."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Stop(threading.Event):
    """Set when the run is asked to stop; `signum` is the signal that asked (None: set by code)."""

    def __init__(self) -> None:
        super().__init__()
        self.signum: int | None = None
        # What a first stop lets finish now, for the line that says so (a run in phases updates it).
        self.finishing = "the work in hand"

    def request(self, signum: int | None = None) -> None:
        if not self.is_set():
            self.signum = signum
        self.set()


_active: list[Stop] = []  # the flags of the runs in progress: what `request_stop` reaches


def request_stop(signum: int) -> bool:
    """Stop the runs in progress as the signal `signum` would, from any thread (a `--json` reader that
    went away: SIGPIPE). False when no run is in progress."""
    for stop in list(_active):
        stop.request(signum)
    return bool(_active)


def exit_code(signum: int | None) -> int:
    """The shell's convention: 128 + the signal's number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + (signum or signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(
    on_stop: Callable[[], None] | None = None, stop: Stop | None = None
) -> Generator[Stop, None, None]:
    """A first SIGINT or SIGTERM sets the flag (`stop`, or a new one) and calls `on_stop`; a second one
    raises `Interrupted`. Outside the main thread signals cannot be caught: the flag is only set by
    code then.
    """
    stop = stop or Stop()
    _active.append(stop)
    try:
        if threading.current_thread() is not threading.main_thread():
            yield stop
        else:
            with _handlers(stop, on_stop):
                yield stop
    finally:
        _active.remove(stop)


@contextlib.contextmanager
def _handlers(stop: Stop, on_stop: Callable[[], None] | None) -> Generator[None, None, None]:
    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise Interrupted(signum)
        stop.request(signum)
        if on_stop:
            on_stop()

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def deferred() -> Generator[None, None, None]:
    """SIGINT and SIGTERM held back for a short step that must not be cut in two (removing a half-written
    export, saying why the command stopped). One that came meanwhile raises `Interrupted` afterwards,
    unless a KeyboardInterrupt is already on its way out (the command stops anyway). Outside the main
    thread signals cannot be caught: nothing to hold back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: came.append(signum)) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if came and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
        raise Interrupted(came[0])
