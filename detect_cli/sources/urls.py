"""Fetching http(s) URLs: redirects to http(s) only, a size limit, and one deadline for the whole request
however the server behaves.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from detect_cli.errors import InputError
from detect_cli.sources.inputs import URL_SCHEMES

DEFAULT_URL_TIMEOUT_S = 15.0
MAX_URL_BYTES = 100 * 1024 * 1024  # an image larger than this is refused rather than filling memory
MAX_VIDEO_URL_BYTES = 4 * 1024**3  # a video URL is downloaded to a temporary file, up to this size


def first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


@contextlib.contextmanager
def _url_errors(timeout: float) -> Iterator[None]:
    """Any failure of a URL request becomes an InputError with a one-line reason."""
    try:
        yield
    except urllib.error.HTTPError as e:
        if 300 <= e.code < 400:  # urllib gives up on a redirect loop (or too many) with the last 3xx
            raise InputError(f"too many redirects (HTTP {e.code}; a redirect loop?)") from e
        raise InputError(f"HTTP {e.code} {first_line(e.reason)}") from e
    except urllib.error.URLError as e:
        raise InputError(f"cannot fetch URL: {first_line(e.reason)}") from e
    except TimeoutError as e:
        raise InputError(f"timed out after {timeout:g}s") from e
    except (OSError, http.client.HTTPException) as e:
        raise InputError(f"cannot fetch URL: {first_line(e) or type(e).__name__}") from e


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only: a server must not send us to ftp:// or file://."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urllib.parse.urlsplit(newurl).scheme.lower() not in URL_SCHEMES:
            raise InputError(f"refused redirect to {newurl}: only http and https are fetched")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_HttpOnlyRedirects)


def _stream_url(url: str, timeout: float, limit: int, sink: Callable[[bytes], None]) -> int:
    """GET `url`, handing the body to `sink` chunk by chunk, within one deadline for the whole request.

    The deadline holds however the server behaves: the request runs in a daemon thread and the caller
    stops waiting when time is up (a server that sends one byte a second is cut off, and so is a name
    lookup that hangs). The thread then gives up at its next chunk. Returns the bytes received.
    """
    deadline = time.monotonic() + timeout
    done = threading.Event()
    outcome: list[BaseException | int] = []

    def fetch() -> None:
        received = 0
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "detect-cli"})
            with _url_errors(timeout), _opener.open(request, timeout=timeout) as response:
                while not done.is_set():
                    chunk = response.read1(1 << 16)
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > limit:
                        raise InputError(f"larger than {limit / 2**20:g} MiB")
                    if time.monotonic() > deadline:
                        raise InputError(f"timed out after {timeout:g}s")
                    sink(chunk)
            outcome.append(received)
        except BaseException as e:  # carried to the caller, which raises it
            outcome.append(e)
        finally:
            done.set()

    threading.Thread(target=fetch, name="detect-url", daemon=True).start()
    if not done.wait(max(deadline - time.monotonic(), 0) + 0.05) or not outcome:
        done.set()  # the thread stops at its next chunk; its socket times out on its own
        raise InputError(f"timed out after {timeout:g}s (the whole download)")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def fetch_url(url: str, timeout: float = DEFAULT_URL_TIMEOUT_S) -> bytes:
    """GET an http(s) URL within `timeout` seconds in all; any failure becomes an InputError."""
    chunks: list[bytes] = []
    _stream_url(url, timeout, MAX_URL_BYTES, chunks.append)
    return b"".join(chunks)


def download_url(url: str, dest: Path, timeout: float = DEFAULT_URL_TIMEOUT_S) -> Path:
    """GET an http(s) URL into `dest`, streamed in chunks (a video need not fit in memory), within
    `timeout` seconds in all."""
    with dest.open("wb") as f:
        size = _stream_url(url, timeout, MAX_VIDEO_URL_BYTES, f.write)
    if size == 0:
        raise InputError("empty file")
    return dest
