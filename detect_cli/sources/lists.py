"""@list files: one SOURCE a line, '#' comments, any encoding; a list that includes itself, or nests too
deep, is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from detect_cli.sources.files import read_regular
from detect_cli.sources.inputs import is_url

MAX_LIST_BYTES = 256 * 1024**2


def list_entries(list_file: Path) -> list[str]:
    """One source per line; '#' starts a comment. UTF-8 (with or without a BOM); a list that is not
    UTF-8 is read byte for byte as file names are (`os.fsdecode`), so a Latin-1 list still names the
    files whose names are those bytes. Raises InputError when the file cannot be read."""
    data = read_regular(list_file, MAX_LIST_BYTES, what="list file")[0]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = os.fsdecode(data)
    entries = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip() if not is_url(line) else line.strip()
        if entry:
            entries.append(entry)
    return entries


def list_problem(list_file: Path, lists: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """(why the list cannot be expanded, or ""; the chain of lists with this one added)."""
    key = os.path.realpath(list_file)
    if key in lists:
        return "list file includes itself (directly or through another list); not read again", lists
    if len(lists) >= 16:
        return "lists nested more than 16 deep", lists
    return "", (*lists, key)
