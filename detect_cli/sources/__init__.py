"""The user's SOURCE arguments turned into inputs, and those inputs read: discovery (`discover`: files,
folders, globs, URLs, @lists; `walk`, `lists`), what a source names (`inputs`), reading files (`files`)
and URLs (`urls`), decoding pictures within the pixel budget (`decode`), each input's output name
(`names`).

Other layers import from here; the modules of the package import each other directly.
"""

from detect_cli.sources.decode import (
    DEFAULT_MAX_PIXELS,
    decode_image,
    parse_pixels,
    pil_open,
    quiet_opencv,
    read_image,
)
from detect_cli.sources.discover import discover_images, discover_videos
from detect_cli.sources.files import (
    FileStamp,
    check_regular,
    current_stamp,
    input_path,
    read_file,
    read_regular,
)
from detect_cli.sources.inputs import (
    IMAGE_SUFFIXES,
    URL_SCHEMES,
    VIDEO_SUFFIXES,
    ImageInput,
    VideoInput,
    ascii_int,
    named_kind,
    names_a_list,
    refuse_other_kind,
    url_rel_path,
)
from detect_cli.sources.names import name_outputs, output_file, output_names, unique_stems
from detect_cli.sources.urls import DEFAULT_URL_TIMEOUT_S, download_url, fetch_url
from detect_cli.sources.walk import RUN_MARKER, is_run_folder

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_URL_TIMEOUT_S",
    "IMAGE_SUFFIXES",
    "RUN_MARKER",
    "URL_SCHEMES",
    "VIDEO_SUFFIXES",
    "FileStamp",
    "ImageInput",
    "VideoInput",
    "ascii_int",
    "check_regular",
    "current_stamp",
    "decode_image",
    "discover_images",
    "discover_videos",
    "download_url",
    "fetch_url",
    "input_path",
    "is_run_folder",
    "name_outputs",
    "named_kind",
    "names_a_list",
    "output_file",
    "output_names",
    "parse_pixels",
    "pil_open",
    "quiet_opencv",
    "read_file",
    "read_image",
    "read_regular",
    "refuse_other_kind",
    "unique_stems",
    "url_rel_path",
]
