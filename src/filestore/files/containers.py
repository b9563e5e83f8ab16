"""Office files checked by their container's table of contents, once the object is stored.

The first bytes of any zip say "PK", so a JAR or a plain zip named .docx/.xlsx passes the
magic-number sniff, and so does any OLE2 compound file (an MSI) named .doc/.xls. What makes
them Office documents is inside: the zip's central directory must list the main part
(`word/document.xml`, `xl/workbook.xml`, `ppt/presentation.xml`), and the OLE2 root storage
must hold the main stream (`WordDocument`, `Workbook`/`Book`, `PowerPoint Document`).

Both tables are read with a few ranged GETs of the stored object (the zip's end record from
its last 64 KiB, then the central directory; the OLE2 header, then the directory sectors by
their FAT chain); the file is never read whole, nor held in memory.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable

from filestore.errors import UnsupportedMediaType
from filestore.storage.store import ObjectStorage

Fetch = Callable[[int, int], Awaitable[bytes]]  # bytes start..end (end exclusive)

ZIP_MAIN_PART = {
    "docx": "word/document.xml",
    "xlsx": "xl/workbook.xml",
    "pptx": "ppt/presentation.xml",
}
OLE2_MAIN_STREAM = {
    "doc": {"WordDocument"},
    "xls": {"Workbook", "Book"},
    "ppt": {"PowerPoint Document"},
}

_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
_CENTRAL_ENTRY = b"PK\x01\x02"
_TAIL_BYTES = 0xFFFF + _EOCD_SIZE  # the end record plus the longest zip comment
MAX_DIRECTORY_BYTES = 8 * 1024 * 1024

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_END_OF_CHAIN = 0xFFFFFFFA  # this and above: no sector
_NO_ENTRY = 0xFFFFFFFF
MAX_DIRECTORY_SECTORS = 512


class NotAnOfficeFile(UnsupportedMediaType):
    def __init__(self, extension: str, why: str) -> None:
        super().__init__(f"This is not a .{extension} file: {why}", code="content_mismatch")


def needs_check(extension: str) -> bool:
    return extension in ZIP_MAIN_PART or extension in OLE2_MAIN_STREAM


async def check_stored(
    storage: ObjectStorage, bucket: str, key: str, *, size: int, extension: str
) -> None:
    """`check` on a stored object, by ranged reads."""
    if not needs_check(extension):
        return

    async def fetch(start: int, end: int) -> bytes:
        if end <= start:
            return b""
        opened = await storage.open(bucket, key, start=start, end=end)
        return b"".join([bytes(chunk) async for chunk in opened.chunks])

    await check(fetch, size=size, extension=extension)


async def check(fetch: Fetch, *, size: int, extension: str) -> None:
    """Raise `NotAnOfficeFile` (415) unless the container holds the extension's main part."""
    if extension in ZIP_MAIN_PART:
        part = ZIP_MAIN_PART[extension]
        if part not in await zip_names(fetch, size=size, extension=extension):
            raise NotAnOfficeFile(extension, f"a zip without {part} (another kind of zip file)")
    elif extension in OLE2_MAIN_STREAM:
        wanted = OLE2_MAIN_STREAM[extension]
        if not wanted & await ole2_root_names(fetch, size=size, extension=extension):
            raise NotAnOfficeFile(
                extension, f"an OLE2 file without a {' or '.join(sorted(wanted))} stream"
            )


async def zip_names(fetch: Fetch, *, size: int, extension: str) -> set[str]:
    """The names in a zip's central directory."""
    tail_start = max(0, size - _TAIL_BYTES)
    tail = await fetch(tail_start, size)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < _EOCD_SIZE:
        raise NotAnOfficeFile(extension, "no zip directory at its end (damaged or not a zip)")
    entries, directory_size, directory_offset = struct.unpack_from("<HII", tail, at + 10)
    if _NO_ENTRY in (directory_size, directory_offset) or entries == 0xFFFF:
        directory_size, directory_offset = await _zip64_directory(fetch, tail, at, tail_start)
    if directory_size > MAX_DIRECTORY_BYTES or directory_offset + directory_size > size:
        raise NotAnOfficeFile(extension, "its zip directory is too large or damaged")
    directory = await fetch(directory_offset, directory_offset + directory_size)
    names: set[str] = set()
    position = 0
    while position + 46 <= len(directory) and directory[position : position + 4] == (
        _CENTRAL_ENTRY
    ):
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", directory, position + 28)
        start = position + 46
        names.add(directory[start : start + name_len].decode("utf-8", "replace"))
        position = start + name_len + extra_len + comment_len
    return names


async def _zip64_directory(fetch: Fetch, tail: bytes, at: int, tail_start: int) -> tuple[int, int]:
    locator = at - 20
    if locator < 0 or tail[locator : locator + 4] != _ZIP64_LOCATOR:
        return _NO_ENTRY, _NO_ENTRY
    (record_offset,) = struct.unpack_from("<Q", tail, locator + 8)
    record = await fetch(record_offset, record_offset + 56)
    if record[:4] != _ZIP64_EOCD or len(record) < 56:
        return _NO_ENTRY, _NO_ENTRY
    directory_size, directory_offset = struct.unpack_from("<QQ", record, 40)
    return int(directory_size), int(directory_offset)


async def ole2_root_names(fetch: Fetch, *, size: int, extension: str) -> set[str]:
    """The names of the streams and storages directly under an OLE2 file's root."""
    header = await fetch(0, min(size, 512))
    if len(header) < 512 or not header.startswith(_OLE2_MAGIC):
        raise NotAnOfficeFile(extension, "not an Office 97-2003 (OLE2) file")
    sector_shift = struct.unpack_from("<H", header, 0x1E)[0]
    if sector_shift not in (9, 12):
        raise NotAnOfficeFile(extension, "a damaged OLE2 header")
    sector_size = 1 << sector_shift
    difat = struct.unpack_from("<109I", header, 0x4C)
    fat_sectors: dict[int, tuple[int, ...]] = {}

    async def next_sector(sector: int) -> int:
        per_fat = sector_size // 4
        index, within = divmod(sector, per_fat)
        if index >= len(difat) or difat[index] >= _END_OF_CHAIN:
            return _END_OF_CHAIN  # beyond the header's DIFAT: stop reading the chain
        if index not in fat_sectors:
            start = (difat[index] + 1) * sector_size
            sector_bytes = await fetch(start, start + sector_size)
            if len(sector_bytes) < sector_size:
                return _END_OF_CHAIN
            fat_sectors[index] = struct.unpack(f"<{per_fat}I", sector_bytes)
        following: int = fat_sectors[index][within]
        return following

    entries: list[bytes] = []
    sector = struct.unpack_from("<I", header, 0x30)[0]
    seen: set[int] = set()
    while sector < _END_OF_CHAIN and sector not in seen and len(seen) < MAX_DIRECTORY_SECTORS:
        seen.add(sector)
        start = (sector + 1) * sector_size
        if start + sector_size > size:
            break
        data = await fetch(start, start + sector_size)
        entries += [data[i : i + 128] for i in range(0, len(data) - 127, 128)]
        sector = await next_sector(sector)
    return _root_children(entries)


def _root_children(entries: list[bytes]) -> set[str]:
    """Walk the root's red-black tree of children (left/right siblings of its child)."""
    if not entries:
        return set()
    names: set[str] = set()
    child = struct.unpack_from("<I", entries[0], 0x4C)[0]
    if child == 0 or child >= len(entries):
        # No usable tree (hand-made files leave it out): take every name there is.
        return {_name(entry) for entry in entries[1:]} - {""}
    stack = [child]
    visited: set[int] = set()
    while stack:
        index = stack.pop()
        if index >= len(entries) or index in visited:
            continue
        visited.add(index)
        entry = entries[index]
        names.add(_name(entry))
        left, right = struct.unpack_from("<II", entry, 0x44)
        stack += [left, right]
    return names - {""}


def _name(entry: bytes) -> str:
    length = struct.unpack_from("<H", entry, 0x40)[0]
    return entry[: length - 2].decode("utf-16-le", "replace") if 2 <= length <= 64 else ""
