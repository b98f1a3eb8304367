"""Turning the user's SOURCE arguments into inputs: files, folders, globs, http(s) URLs and @lists for
images; for videos also streams (rtsp, rtmp, http) and webcam indexes.

Discovery never raises for one bad source: a missing path, an empty folder or a refused URL becomes an
`ImageInput` carrying its `error`, so it is recorded in results.jsonl and the run goes on.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import http.client
import io
import math
import os
import re
import stat
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from detect_cli.errors import InputError, NoInputsError

if TYPE_CHECKING:
    import numpy as np
from detect_cli.sources.inputs import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    URL_SCHEMES,
    STREAM_SCHEMES,
    ImageInput,
    _ASCII_DIGITS,
    ascii_int,
    is_url,
    named_kind,
    safe_name,
    url_rel_path,
    VideoInput,
)  # noqa: F401
from detect_cli.sources.walk import (
    RUN_MARKER,
    dir_label,
    WalkProblem,
    _is_dir,
    RUN_RECORDS,
    is_run_folder,
    walk_files,
    under_skipped,
    split_pattern,
)  # noqa: F401
from detect_cli.sources.files import (
    MAX_FILE_BYTES,
    FileStamp,
    input_path,
    current_stamp,
    _missing,
    _KINDS,
    _open_regular,
    check_regular,
    read_regular,
    read_file,
)  # noqa: F401
from detect_cli.sources.urls import (
    DEFAULT_URL_TIMEOUT_S,
    MAX_URL_BYTES,
    MAX_VIDEO_URL_BYTES,
    _first_line,
    _url_errors,
    _HttpOnlyRedirects,
    _opener,
    _stream_url,
    fetch_url,
    download_url,
)  # noqa: F401
from detect_cli.sources.decode import (
    DEFAULT_MAX_PIXELS,
    quiet_opencv,
    _jpeg_missing_end,
    PNG_SIGNATURE,
    _png_problem,
    PIL_MODULES,
    quiet_pillow,
    pil_open,
    _strict_decode_fails,
    image_size,
    MAX_PIXELS_LIMIT,
    parse_pixels,
    decode_image,
    read_image,
)  # noqa: F401
from detect_cli.sources.lists import MAX_LIST_BYTES, list_entries, list_problem  # noqa: F401


# --- videos ---------------------------------------------------------------------------------------


# --- reading --------------------------------------------------------------------------------------
