"""Lines of a text file (plain or .gz) decoded one at a time, so a bad byte is reported as file:line."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterator

from retr.data.errors import DataError


def numbered_lines(path: str | Path) -> Iterator[tuple[str, str]]:
    """``(where, text)`` for each non-blank line, ``where`` being ``path:line``; non-UTF-8 bytes are a DataError."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        handle = opener(path, "rb")
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # a leading byte-order mark is dropped
            except UnicodeDecodeError as error:
                raise DataError(f"{path}:{number}: not UTF-8 text (byte 0x{raw[error.start]:02x} at column "
                                f"{error.start + 1}); re-encode the file as UTF-8") from None
            if text.strip():
                yield f"{path}:{number}", text
