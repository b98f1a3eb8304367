"""detect: run RT-DETR and YOLO11 on your own images and videos, and compare them."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("detect-cli")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
