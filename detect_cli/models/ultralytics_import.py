"""Importing ultralytics once, offline-safe, with its chatter on stderr: stdout is kept for results."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """ultralytics logs to stdout; keep stdout for results (`--json`) by sending its chatter to stderr."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def no_openvino_telemetry() -> None:
    """Keep OpenVINO's converter and NNCF from sending usage statistics. Both send them through the
    `openvino_telemetry` package when it is importable (and no opt-out file exists): a request to Google
    Analytics on every export, from a forked child that a slow or unreachable network gets killed, its
    traceback printed on our stderr. Both fall back to a silent stub when the import fails, which a None
    in `sys.modules` makes it do. Call before either is imported."""
    if "openvino_telemetry" not in sys.modules:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]


def import_ultralytics() -> Any:
    """Import ultralytics once, offline-safe: no DNS probe, telemetry or pip auto-installs unless asked,
    and no OpenVINO telemetry from its exporter (`no_openvino_telemetry`).

    YOLO_OFFLINE only stops those side trips; official weights still download (see `fetch_weights`).
    Setting YOLO_OFFLINE=0 in the environment restores ultralytics' defaults.
    """
    no_openvino_telemetry()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    with quiet_stdout():  # the logger binds sys.stdout when first imported
        import ultralytics
        from ultralytics.utils import LOGGER
    # Imported earlier without the redirect (another entry point), its handler would still write to
    # stdout, which belongs to `--json` results: move it to stderr.
    for handler in LOGGER.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.__stdout__):
            handler.setStream(sys.stderr)
    return ultralytics
