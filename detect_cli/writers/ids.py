"""COCO image ids for the records of one run folder: unique in it, the same for an input every time it
is recorded, a file's own number where it is named by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

FIRST_FREE_ID = 1_000_000_000  # where image ids not taken from a file's name start (above COCO's own)


def name_number(source: str) -> int | None:
    """The number a file is named by (COCO's 000000000139.jpg → 139): ASCII digits only. A name in
    other digits (`²`, `٣`) is not taken for a number: `int()` refuses some and reads others, and
    neither is what a dataset's image id means."""
    stem = PurePosixPath(source).stem
    return int(stem) if stem.isascii() and stem.isdigit() else None


def _id_key(record: Mapping[str, Any]) -> tuple[str, Any]:
    """Which input (or video frame) a record is about: as resume keys it, and its frame."""
    return record.get("path") or record["source"], record.get("frame")


class ImageIds:
    """COCO image ids for the records of one run folder: unique in it, and the same for an input every
    time it is recorded (a resumed or redone input keeps its id).

    An image named by a number (ASCII digits) gets that number unless an input recorded before it has
    it (a/1.jpg, then b/001.jpg or b/1.jpg); every other input, and every video frame, gets the next free
    id from FIRST_FREE_ID up, in the order they are recorded.
    """

    def __init__(self) -> None:
        self._used: set[int] = set()
        self._by_key: dict[tuple[str, Any], int] = {}
        self._next = FIRST_FREE_ID

    def note(self, record: Mapping[str, Any]) -> None:
        """Learn an id a record already holds."""
        image_id = record.get("image_id")
        if isinstance(image_id, int) and not isinstance(image_id, bool):
            self._used.add(image_id)
            self._by_key[_id_key(record)] = image_id

    def assign(self, record: Mapping[str, Any]) -> int:
        """The id of the input a record is about: the one it was given before, else a new one."""
        key = _id_key(record)
        if key in self._by_key:
            return self._by_key[key]
        number = name_number(record["source"]) if record.get("frame") is None else None
        if number is None or number in self._used:
            while self._next in self._used:
                self._next += 1
            number = self._next
        self._used.add(number)
        self._by_key[key] = number
        return number
