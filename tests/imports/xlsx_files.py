"""Workbooks made byte by byte for the .xlsx reader's tests: what Excel writes, and what a
hostile or broken file holds (formulas without values, zip bombs, encrypted containers)."""

from __future__ import annotations

import io
import struct
import zipfile
from html import escape

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"


def cell_ref(column: int, row: int) -> str:
    letters = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters}{row}"


def sheet_xml(rows: list[str], *, tail: str = "", head: str = "") -> str:
    """A worksheet whose sheetData holds `rows` (each a `<row>` element's XML)."""
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{MAIN}" '
        f'xmlns:r="{RELS}">{head}<sheetData>{"".join(rows)}</sheetData>{tail}</worksheet>'
    )


def shared_row(row: int, indexes: list[int]) -> str:
    """A row of shared-string cells, the way Excel writes it."""
    cells = "".join(
        f'<c r="{cell_ref(i, row)}" t="s"><v>{index}</v></c>' for i, index in enumerate(indexes)
    )
    return f'<row r="{row}" spans="1:{len(indexes)}">{cells}</row>'


def inline_row(row: int, values: list[str]) -> str:
    cells = "".join(
        f'<c r="{cell_ref(i, row)}" t="inlineStr"><is><t>{escape(v)}</t></is></c>'
        for i, v in enumerate(values)
    )
    return f'<row r="{row}">{cells}</row>'


def sst_xml(strings: list[str]) -> str:
    items = "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
    return f'<sst xmlns="{MAIN}" count="{len(strings)}" uniqueCount="{len(strings)}">{items}</sst>'


def workbook(
    sheets: list[tuple[str, str]] | None = None,
    *,
    strings: list[str] | None = None,
    states: dict[str, str] | None = None,
    extra: dict[str, bytes | str] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """An .xlsx with `sheets` [(name, worksheet XML)] and a shared string table."""
    sheets = sheets if sheets is not None else [("Sheet1", sheet_xml([]))]
    states = states or {}
    parts: dict[str, bytes | str] = {
        "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"/>',
        "_rels/.rels": f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="{RELS}/'
        'officeDocument" Target="xl/workbook.xml"/></Relationships>',
    }
    rels = [
        f'<Relationship Id="rId{i + 1}" Type="{RELS}/worksheet" '
        f'Target="worksheets/sheet{i + 1}.xml"/>'
        for i in range(len(sheets))
    ]
    nodes = []
    for i, (name, xml) in enumerate(sheets):
        state = f' state="{states[name]}"' if name in states else ""
        nodes.append(f'<sheet name="{escape(name)}" sheetId="{i + 1}"{state} r:id="rId{i + 1}"/>')
        parts[f"xl/worksheets/sheet{i + 1}.xml"] = xml
    if strings is not None:
        rels.append(
            f'<Relationship Id="rIdS" Type="{RELS}/sharedStrings" Target="sharedStrings.xml"/>'
        )
        parts["xl/sharedStrings.xml"] = sst_xml(strings)
    parts["xl/workbook.xml"] = (
        f'<workbook xmlns="{MAIN}" xmlns:r="{RELS}"><sheets>{"".join(nodes)}</sheets></workbook>'
    )
    parts["xl/_rels/workbook.xml.rels"] = (
        f'<Relationships xmlns="{PKG}">{"".join(rels)}</Relationships>'
    )
    parts.update(extra or {})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


def ole2(*names: str, sector_shift: int = 9) -> bytes:
    """An OLE2 compound file whose first directory sector names `names` (the root first, its
    children chained as right siblings; the directory in sector 0, the FAT in sector 1): the
    container of an old .xls ("Workbook"), an encrypted .xlsx ("EncryptedPackage"), a .doc
    ("WordDocument") or an MSI."""
    free, end_of_chain, fat_sector = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
    size = 1 << sector_shift
    header = bytearray(size if size == 512 else 4096)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<H", header, 0x1A, 3 if size == 512 else 4)
    struct.pack_into("<H", header, 0x1C, 0xFFFE)
    struct.pack_into("<H", header, 0x1E, sector_shift)
    struct.pack_into("<I", header, 0x2C, 1)  # one FAT sector
    struct.pack_into("<I", header, 0x30, 0)  # the directory starts in sector 0
    struct.pack_into("<109I", header, 0x4C, 1, *([free] * 108))
    directory = bytearray(size)
    for index, name in enumerate(("Root Entry", *names)):
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        entry = index * 128
        directory[entry : entry + len(encoded)] = encoded
        struct.pack_into("<H", directory, entry + 0x40, len(encoded))
        directory[entry + 0x42] = 5 if index == 0 else 2
        right = index + 1 if 0 < index < len(names) else free
        child = 1 if index == 0 and names else free
        struct.pack_into("<III", directory, entry + 0x44, free, right, child)
    fat = struct.pack(f"<{size // 4}I", end_of_chain, fat_sector, *([free] * (size // 4 - 2)))
    return bytes(header) + bytes(directory) + fat
