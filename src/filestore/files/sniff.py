"""Content sniffing: the stored type comes from the bytes, and must agree with the extension.

puremagic (pure Python, installs with pip alone) names binary formats by their magic numbers;
text formats have none, so for those the head of the file must look like text. Its tables are
indexed here once (`magic_matches`): puremagic compares all 1,437 header signatures one by one,
~0.5 ms per file, which was a tenth of a 4 KiB upload's server CPU.
"""

from __future__ import annotations

import codecs
from collections import defaultdict
from typing import Any

import puremagic
import puremagic.main as puremagic_tables

from filestore.errors import UnsupportedMediaType

SNIFF_BYTES = 8 * 1024

TEXT_TYPES = {
    "csv": "text/csv",
    "txt": "text/plain",
    "json": "application/json",
    "xml": "application/xml",
    "md": "text/markdown",
    "log": "text/plain",
}

# Extensions that are the same format as another one puremagic may report.
_ALIASES = {
    "jpg": {"jpg", "jpeg", "jpe", "jfif"},
    "jpeg": {"jpg", "jpeg", "jpe", "jfif"},
    "tif": {"tif", "tiff"},
    "tiff": {"tif", "tiff"},
}

_OOXML = {"xlsx", "docx", "pptx"}
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

_EXECUTABLE_MIMES = {
    "application/vnd.microsoft.portable-executable",
    "application/x-msdownload",
    "application/x-executable",
    "application/x-mach-binary",
    "application/x-elf",
    "application/x-sharedlib",
}
_EXECUTABLE_MAGIC = (
    b"MZ",
    b"\x7fELF",
    b"\xfe\xed\xfa",
    b"\xcf\xfa\xed\xfe",
    b"\xce\xfa\xed\xfe",
    b"#!",
)

# Formats with magic numbers: a file with one of these extensions must carry that magic.
BINARY_EXTENSIONS = {
    "jpg",
    "jpeg",
    "png",
    "gif",
    "webp",
    "bmp",
    "tif",
    "tiff",
    "pdf",
    "doc",
    "docx",
    "xls",
    "xlsx",
    "ppt",
    "pptx",
    "odt",
    "ods",
    "zip",
    "gz",
    "tar",
    "7z",
    "mp3",
    "mp4",
    "mov",
    "wav",
}

SAFE_INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"}


class _Signatures:
    """puremagic's signatures grouped by where they sit (offset, length): one slice of the
    file and one dict lookup per group instead of one comparison per signature."""

    def __init__(self, rows: list[Any]) -> None:
        groups: dict[tuple[int, int], dict[bytes, list[tuple[int, Any]]]] = defaultdict(dict)
        for index, row in enumerate(rows):
            group = groups[(row.offset, len(row.byte_match))]
            group.setdefault(row.byte_match, []).append((index, row))
        self.groups = [
            (offset, offset + length, by_bytes) for (offset, length), by_bytes in groups.items()
        ]

    def header_matches(self, header: bytes) -> list[tuple[int, Any]]:
        found: list[tuple[int, Any]] = []
        for start, end, by_bytes in self.groups:
            if end > len(header):
                continue
            found.extend(by_bytes.get(header[start:end], ()))
        return found

    def footer_matches(self, footer: bytes) -> list[tuple[int, Any]]:
        found: list[tuple[int, Any]] = []
        for start, end, by_bytes in self.groups:
            found.extend(by_bytes.get(footer[start:end] if end != 0 else footer[start:], ()))
        return found


_HEADERS = _Signatures(puremagic_tables.magic_header_array)
_FOOTERS = _Signatures(puremagic_tables.magic_footer_array)


def magic_matches(head: bytes) -> list[Any]:
    """What `puremagic.magic_string(head)` returns, in its order (tests/files/test_sniff.py
    compares them), from the indexed tables. Raises `puremagic.PureError` as it does."""
    if not head:
        raise ValueError("Input was empty")
    header, footer = head[: puremagic_tables.max_head], head[-puremagic_tables.max_foot :]
    # Back in the tables' order, the one puremagic's loop finds them in: its ranking sort is
    # stable, so signatures it ranks equal keep that order.
    matches = [row for _, row in sorted(_HEADERS.header_matches(header), key=lambda m: m[0])]
    matches += [row for _, row in sorted(_FOOTERS.footer_matches(footer), key=lambda m: m[0])]
    parts = set()
    for matched in matches:
        for row in puremagic_tables.multi_part_dict.get(matched.byte_match, ()):
            start, end = row.offset, row.offset + len(row.byte_match)
            if row.offset < 0:
                area = footer[start:end] if end != 0 else footer[start:]
                if area == row.byte_match:
                    parts.add(row._replace(byte_match=matched.byte_match + row.byte_match))
            elif end <= len(header) and header[start:end] == row.byte_match:
                parts.add(row._replace(byte_match=header[matched.offset : end]))
    matches.extend(list(parts))
    info: list[Any] = puremagic_tables._confidence(matches, None)
    info.sort(key=lambda x: x.confidence, reverse=True)
    return info


def looks_like_text(head: bytes) -> bool:
    """UTF-8 (a cut last character allowed), Latin-1, or UTF-16 with its byte-order mark (what
    Excel's "Unicode Text" writes), without NUL or odd control characters."""
    for bom, encoding in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            # Incremental: a character cut by the end of the head is held back, not replaced.
            text = codecs.getincrementaldecoder(encoding)("replace").decode(head[2:])
            return all(c.isprintable() or c in "\t\n\f\r" for c in text) and "\ufffd" not in text
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:
            controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
            return controls == 0
    return True


def _is_executable(head: bytes, mimes: set[str]) -> bool:
    return head.startswith(_EXECUTABLE_MAGIC) or bool(mimes & _EXECUTABLE_MIMES)


def sniff(head: bytes, extension: str) -> str:
    """The MIME type of a file whose first bytes are `head` and whose name ends in `extension`.

    Raises UnsupportedMediaType when the content is not what the extension says.
    """
    if extension in TEXT_TYPES:
        if not looks_like_text(head):
            raise UnsupportedMediaType(
                f"The content of this .{extension} file is not text", code="content_mismatch"
            )
        return TEXT_TYPES[extension]
    try:
        matches = magic_matches(head)
    except puremagic.PureError:
        matches = []
    mimes = {m.mime_type for m in matches if m.mime_type}
    if _is_executable(head, mimes):
        raise UnsupportedMediaType(
            f"Executable content is not accepted (file named .{extension})", code="content_mismatch"
        )
    if extension in _OOXML and head.startswith(_OLE2_MAGIC):
        # What Office writes for a password-protected .xlsx/.docx/.pptx (or an old binary file
        # renamed): puremagic would call it a .doc, which helps nobody.
        raise UnsupportedMediaType(
            f"This .{extension} file is password-protected (encrypted), or an old Office "
            f"97-2003 file renamed: remove the password, or save it as .{extension}, and "
            "upload it again",
            code="content_mismatch",
        )
    accepted = _ALIASES.get(extension, {extension})
    for match in matches:
        if match.extension.lstrip(".").lower() in accepted and match.mime_type:
            return str(match.mime_type)
    if extension in BINARY_EXTENSIONS:
        found = (
            f"looks like {matches[0].extension.lstrip('.') or matches[0].name}, not"
            if matches
            else "is not"
        )
        raise UnsupportedMediaType(
            f"The content of this file {found} a .{extension} file", code="content_mismatch"
        )
    if matches and matches[0].mime_type:
        return str(matches[0].mime_type)
    return "text/plain" if looks_like_text(head) else "application/octet-stream"
