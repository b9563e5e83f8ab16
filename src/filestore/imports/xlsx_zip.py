"""The container of an .xlsx: what the file really is, and reading its parts within limits.

A file named .xlsx may be a zip of anything, an old binary .xls, a password-protected
workbook (an OLE2 compound file holding an encrypted package, not a zip) or a zip bomb. This
module tells them apart from the first bytes and the zip's table of contents, and reads parts
only within stated limits:

- `MAX_PART_BYTES` (1 GiB) uncompressed for one part: a 1M-row, 10-column sheet is ~350 MB;
- `MAX_TOTAL_BYTES` (2 GiB) uncompressed for all the parts an import reads;
- `MAX_RATIO` (200) uncompressed/compressed for any part over `RATIO_FLOOR` (1 MiB):
  spreadsheets measured here compress 8-15x, deflate cannot exceed ~1032x, and zip bombs
  sit at that ceiling;
- `MAX_ENTRIES` (10,000) parts in the zip.

The declared sizes are checked before a byte is inflated, and the bytes actually inflated are
counted as they are read, so a table of contents that lies does not get further.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

MAX_PART_BYTES = 1024**3
MAX_TOTAL_BYTES = 2 * 1024**3
MAX_RATIO = 200
RATIO_FLOOR = 1024**2
MAX_ENTRIES = 10_000
MAX_SMALL_PART = 16 * 1024**2  # workbook.xml, relationships: read whole
READ_CHUNK = 256 * 1024

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
SAVE_AS = "open it in Excel and save it as .xlsx (Excel Workbook) or .csv (CSV UTF-8)"


class WorkbookError(ValueError):
    """The file cannot be read as a workbook; the message says why, for the uploader."""


def check_magic(file: BinaryIO) -> None:
    """Refuse anything but a zip from its first bytes, saying what it is when we can tell."""
    file.seek(0)
    head = file.read(8)
    if head.startswith(ZIP_MAGIC):
        return
    if head.startswith(OLE2_MAGIC):
        raise WorkbookError(ole2_message(file))
    if head.lstrip()[:1] == b"<":
        raise WorkbookError(
            f"The file is XML or HTML named .xlsx, not an Excel workbook: {SAVE_AS}"
        )
    raise WorkbookError(f"The file is not an .xlsx workbook (it is not a zip file): {SAVE_AS}")


def ole2_message(file: BinaryIO) -> str:
    """An OLE2 compound file is an old .xls or a password-protected workbook: tell which
    from the stream names in its first directory sector."""
    names = _ole2_names(file)
    if {"EncryptedPackage", "EncryptionInfo"} & names:
        return (
            "The workbook is password-protected (encrypted), so it cannot be read: remove the "
            "password in Excel (File > Info > Protect Workbook > Encrypt with Password, clear "
            "it), save, and upload it again"
        )
    if {"Workbook", "Book"} & names:
        return f"Old Excel 97-2003 workbooks (.xls) are not supported: {SAVE_AS}"
    return (
        "The file is an Office binary file, not an .xlsx: an old .xls or a password-protected "
        f"workbook. Remove any password and {SAVE_AS}"
    )


def _ole2_names(file: BinaryIO) -> set[str]:
    file.seek(0)
    header = file.read(512)
    if len(header) < 512:
        return set()
    sector_shift = struct.unpack_from("<H", header, 0x1E)[0]
    first_dir = struct.unpack_from("<I", header, 0x30)[0]
    if sector_shift not in (9, 12) or first_dir >= 0xFFFFFFFA:
        return set()
    size = 1 << sector_shift
    file.seek((first_dir + 1) * size)
    sector = file.read(size)
    names: set[str] = set()
    for entry in range(0, len(sector) - 127, 128):
        length = struct.unpack_from("<H", sector, entry + 0x40)[0]
        if 2 <= length <= 64:
            names.add(sector[entry : entry + length - 2].decode("utf-16-le", "replace"))
    return names


class Container:
    """An opened .xlsx zip; `part` streams one part's bytes within the limits."""

    def __init__(self, file: BinaryIO) -> None:
        check_magic(file)
        file.seek(0)
        try:
            self.zip = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise WorkbookError(f"The .xlsx file is damaged (not a readable zip: {exc})") from exc
        infos = self.zip.infolist()
        if len(infos) > MAX_ENTRIES:
            raise WorkbookError(f"The .xlsx has {len(infos)} parts; at most {MAX_ENTRIES} are read")
        self.names = {info.filename: info for info in infos}
        self.inflated = 0
        self._kind_check()

    def _kind_check(self) -> None:
        names = self.names
        if any(info.flag_bits & 0x1 for info in names.values()):
            raise WorkbookError("The file is a password-protected zip, not an Excel workbook")
        if "xl/workbook.bin" in names:
            raise WorkbookError(f"Binary workbooks (.xlsb) are not supported: {SAVE_AS}")
        if "mimetype" in names and "content.xml" in names:
            raise WorkbookError(f"OpenDocument spreadsheets (.ods) are not supported: {SAVE_AS}")

    def has(self, name: str) -> bool:
        return name in self.names

    def _checked(self, name: str) -> zipfile.ZipInfo:
        info = self.names.get(name)
        if info is None:
            raise WorkbookError(f"The workbook is damaged: its part {name} is missing")
        declared = info.file_size
        if declared > MAX_PART_BYTES:
            raise WorkbookError(
                f"The workbook's part {name} would inflate to {declared} bytes; the limit is "
                f"{MAX_PART_BYTES} (a zip bomb, or a sheet far larger than an import reads)"
            )
        if declared > RATIO_FLOOR and declared > max(1, info.compress_size) * MAX_RATIO:
            raise WorkbookError(
                f"The workbook's part {name} is compressed {declared // max(1, info.compress_size)}"
                f" to 1; the limit is {MAX_RATIO} to 1 (this looks like a zip bomb)"
            )
        if self.inflated + declared > MAX_TOTAL_BYTES:
            raise WorkbookError(
                f"The workbook would inflate to more than {MAX_TOTAL_BYTES} bytes (the limit)"
            )
        return info

    def part(self, name: str) -> Iterator[bytes]:
        """The bytes of part `name`, in chunks, counted against the limits as they come."""
        info = self._checked(name)
        limit = min(info.file_size, MAX_PART_BYTES)
        read = 0
        try:
            with self.zip.open(info) as stream:
                while chunk := stream.read(READ_CHUNK):
                    read += len(chunk)
                    self.inflated += len(chunk)
                    if read > limit or self.inflated > MAX_TOTAL_BYTES:
                        raise WorkbookError(
                            f"The workbook's part {name} inflates past its declared size or the "
                            "limits (a zip bomb?)"
                        )
                    yield chunk
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise WorkbookError(f"The .xlsx file is damaged ({name}: {exc})") from exc

    def small_part(self, name: str) -> bytes:
        info = self._checked(name)
        if info.file_size > MAX_SMALL_PART:
            raise WorkbookError(f"The workbook's part {name} is too large ({info.file_size} bytes)")
        data = b"".join(self.part(name))
        if b"<!DOCTYPE" in data[:4096].upper():
            raise WorkbookError(f"The workbook's part {name} has a DOCTYPE, which .xlsx never has")
        return data
