"""Client filenames: sanitised for display, and rendered into RFC 6266 Content-Disposition."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

MAX_FILENAME_LENGTH = 255
# C0, DEL and C1 controls, reserved characters, and bidi/zero-width format characters that can
# disguise an extension ("invoice\u202efdp.exe" shows as "invoiceexe.pdf").
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f"\\/<>:|?*\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]')
_SPACES = re.compile(r"\s+")


def sanitize_filename(raw: str, *, fallback: str = "file") -> str:
    """A display-safe name: no path parts, control or reserved characters, at most 255 bytes.

    The extension is kept when the name is shortened, so the type rules still see it.
    """
    name = unicodedata.normalize("NFC", raw)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name)
    name = _SPACES.sub(" ", name).strip(" .")
    if not name:
        name = fallback
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    ext = ext[:32]
    suffix = f".{ext}" if dot else ""
    while len((stem + suffix).encode()) > MAX_FILENAME_LENGTH and stem:
        stem = stem[:-1]
    return (stem or fallback) + suffix


def extension_of(filename: str) -> str:
    """Lower-case extension without the dot ('' when there is none)."""
    stem, dot, ext = filename.rpartition(".")
    return ext.lower() if dot and stem else ""


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """`attachment; filename="ascii"; filename*=UTF-8''…` so every browser gets the real name."""
    kind = "inline" if inline else "attachment"
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = _UNSAFE.sub("_", ascii_name).replace("%", "_").strip()
    stem, dot, ext = ascii_name.rpartition(".")
    if not (stem if dot else ascii_name).strip(" ._-"):
        # Nothing readable survived (an all-Cyrillic or all-CJK name): keep the extension.
        ascii_name = f"download.{ext}" if dot and ext else "download"
    value = f'{kind}; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value
