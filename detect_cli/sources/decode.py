"""Decoding pictures: the size from the header before the pixels (the `--max-pixels` budget), PNG and
JPEG integrity, OpenCV and Pillow kept quiet; one input read and decoded.
"""

from __future__ import annotations

import io
import math
import os
import struct
import sys
import warnings
from typing import TYPE_CHECKING, Any

from detect_cli.errors import InputError

if TYPE_CHECKING:
    import numpy as np
from detect_cli.sources.files import read_file
from detect_cli.sources.inputs import ImageInput
from detect_cli.sources.urls import DEFAULT_URL_TIMEOUT_S, fetch_url, first_line

# Images above this many pixels are refused from their header, before decoding: a 100 MP picture decodes
# to 300 MB; a "PNG bomb" of a few KB can declare 40000x40000 (4.8 GB). `--max-pixels` changes it.
DEFAULT_MAX_PIXELS = 100_000_000


def quiet_opencv() -> Any:
    """Import cv2 with its own and FFmpeg's logging off: decode problems are reported by us, once.

    Either is left alone when set in the environment (OPENCV_LOG_LEVEL, OPENCV_FFMPEG_LOGLEVEL).
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when FFmpeg is first used
    import cv2

    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return cv2


def _jpeg_missing_end(data: bytes) -> bool:
    return data.startswith(b"\xff\xd8") and not data.rstrip(b"\x00\r\n").endswith(b"\xff\xd9")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_problem(data: bytes) -> str | None:
    """Why a PNG is damaged (a bad chunk checksum, cut short, compressed data that does not inflate), or
    None. Checked before OpenCV sees the bytes: libpng prints its complaints straight onto stderr, past
    any logging setting. Inflating costs about two thirds of a decode, for PNG inputs only."""
    import zlib

    pos, end = len(PNG_SIGNATURE), len(data)
    inflate = zlib.decompressobj()
    while pos + 12 <= end:
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        body_end = pos + 8 + length
        if body_end + 4 > end:
            return "truncated PNG"
        (crc,) = struct.unpack_from(">I", data, body_end)
        if zlib.crc32(data[pos + 4 : body_end]) != crc:
            return f"damaged PNG (bad checksum in its {kind.decode('latin-1')!r} chunk)"
        if kind == b"IDAT":
            try:  # the output is thrown away in bounded pieces: memory stays small whatever it declares
                pending = data[pos + 8 : body_end]
                while pending:
                    inflate.decompress(pending, 1 << 20)
                    pending = inflate.unconsumed_tail
            except zlib.error as e:
                return f"damaged PNG (its image data does not decompress: {e})"
        if kind == b"IEND":
            return None if inflate.eof else "damaged PNG (its image data ends early)"
        pos = body_end + 4
    return "truncated PNG"


PIL_MODULES = r"PIL(\.|$)"


def quiet_pillow() -> None:
    """Keep Pillow's warnings off stderr: it reports a damaged file (a cut TIFF: 'Corrupt EXIF data')
    as a Python warning, printed beside our one failure line per input. The decode says what is wrong
    and the input's failure record carries it. Added once per process (the warnings filter list is
    shared by the reading threads), and again only if something reset the filters."""
    if not any(f[0] == "ignore" and getattr(f[3], "pattern", None) == PIL_MODULES for f in warnings.filters):
        warnings.filterwarnings("ignore", module=PIL_MODULES)


def pil_open(source: Any) -> Any:
    """Pillow's own `Image.open`, with its warnings kept off stderr (`quiet_pillow`). Importing
    ultralytics replaces it with one that, on a file Pillow cannot identify, calls ultralytics'
    requirement checker for a HEIF plugin: a log line about an AutoUpdate and, with YOLO_OFFLINE=0, a pip
    install in the middle of a run, set off by one odd input."""
    from PIL import Image

    quiet_pillow()
    patches = sys.modules.get("ultralytics.utils.patches")
    return getattr(patches, "_image_open", Image.open)(source)


def _strict_decode_fails(data: bytes) -> bool:
    """Some decoders fill a JPEG cut short with grey; a strict decoder tells. Cameras that append data
    after the end marker (motion photos) pass, since the strict decoder stops at the marker."""
    try:
        with pil_open(io.BytesIO(data)) as im:
            im.load()
    except Exception:  # any failure of the strict decoder says the same: the JPEG is damaged
        return True
    return False


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's header, without decoding it; None when the header is unknown."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # our own budget (`max_pixels`) is applied by the caller
    try:
        with pil_open(io.BytesIO(data)) as im:
            return im.size
    except Exception:  # unknown or damaged header; an optional Pillow plugin missing its module
        return None


MAX_PIXELS_LIMIT = 4 * 10**9  # the most --max-pixels allows: 12 GB decoded, beyond any real picture


def parse_pixels(text: str) -> int:
    """'100M', '2.5M', '250000' or '1G' to a number of pixels (K, M, G are powers of 1000), from 1 to
    4G; 'inf', 'nan' and the like are refused."""
    scale = {"K": 10**3, "M": 10**6, "G": 10**9}.get(text.strip()[-1:].upper(), 1)
    number = text.strip()[:-1] if scale > 1 else text.strip()
    try:
        value = float(number) * scale
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not number.isascii():
        raise ValueError(f"'{text}' is not a number of pixels (e.g. 100M, 250000)")
    if not 1 <= value <= MAX_PIXELS_LIMIT:
        raise ValueError(f"'{text}' must be from 1 pixel to {MAX_PIXELS_LIMIT // 10**9}G")
    return int(value)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Bytes to an 8-bit BGR image, as ultralytics reads files: grey, RGBA and 16-bit become BGR uint8.

    The header is read first: an image over `max_pixels` is refused before any memory is spent on it.
    """
    if not data:
        raise InputError("empty file")
    size = image_size(data)
    if size and size[0] * size[1] > max_pixels:
        w, h = size
        raise InputError(
            f"image is {w}x{h} = {w * h / 1e6:.0f} million pixels, over the limit of "
            f"{max_pixels / 1e6:g} million pixels (--max-pixels)"
        )
    if data.startswith(PNG_SIGNATURE) and (problem := _png_problem(data)):
        raise InputError(problem)
    cv2 = quiet_opencv()
    import numpy as np

    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as e:  # OpenCV's own limits (pixels, dimensions) or a decoder failure
        raise InputError(f"not a readable image ({first_line(e.err) or 'OpenCV error'})") from e
    missing_end = _jpeg_missing_end(data)
    if image is None:
        if data.startswith((b"II*\x00", b"MM\x00*")):
            raise InputError("not a readable image (a damaged or cut-short TIFF)")
        raise InputError("truncated JPEG" if missing_end else "not a readable image")
    if missing_end and _strict_decode_fails(data):
        raise InputError("truncated JPEG")
    return image


def read_image(
    item: ImageInput, url_timeout: float = DEFAULT_URL_TIMEOUT_S, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Read and decode one input; raises InputError for anything the user should be told about."""
    if item.error:
        raise InputError(item.error)
    if item.url:
        return decode_image(fetch_url(item.url, url_timeout), max_pixels)
    assert item.path is not None
    return decode_image(read_file(item.path)[0], max_pixels)
