"""Reading .xlsx workbooks for an import: the rows a person sees in Excel, a clear error for
every file that cannot be read, and never the whole workbook in memory."""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filestore.files.models import FileUpload
from filestore.imports import shared_strings as shared_strings_module
from filestore.imports import xlsx_source, xlsx_zip
from filestore.imports.ranged import Fetch, RangeFile
from filestore.imports.rows import ValidationRules
from filestore.imports.shared_strings import SharedStrings
from filestore.imports.tasks import object_source
from filestore.imports.xlsx import SheetRow, WorkbookError, XlsxReader
from filestore.imports.xlsx_sheet import MAX_CELL_CHARS, MAX_COLUMNS, SheetScan
from filestore.storage.store import ObjectStorage
from tests.fixtures.app import fast_settings
from tests.imports.xlsx_files import (
    MAIN,
    inline_row,
    ole2,
    shared_row,
    sheet_xml,
    workbook,
)


def fetcher(data: bytes) -> Fetch:
    return lambda start, end: data[start:end]


def reader(data: bytes, sheet: str | None = None) -> XlsxReader:
    file: Any = RangeFile(fetcher(data), len(data), block_size=4096)
    return XlsxReader(file, sheet=sheet)


def rows_of(data: bytes, sheet: str | None = None) -> list[SheetRow]:
    return [row for batch in reader(data, sheet).rows(batch_rows=3) for row in batch]


def cells_of(data: bytes, sheet: str | None = None) -> list[list[str]]:
    return [row.cells for row in rows_of(data, sheet)]


def refused(data: bytes, sheet: str | None = None) -> str:
    with pytest.raises(WorkbookError) as caught:
        rows_of(data, sheet)
    return str(caught.value)


class TestExcelShapedFiles:
    def test_openpyxl_workbook_as_seen_in_excel(self) -> None:
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = "Customers"
        sheet.append(["Full name", "E-mail Address", "Phone", "Balance", "Active", None, "ZIP"])
        sheet.append(["José Müller", "jose@example.com", 15551234567, 1.5, True, None, "02134"])
        sheet.append(["Ann & Bo <x>", "ann@example.com", None, -3, False, None, 2134])
        sheet.append([None] * 7)
        sheet.append(["Zoë", "zoe@example.com"])
        book.create_sheet("Other").append(["x"])
        out = io.BytesIO()
        book.save(out)
        read = reader(out.getvalue())
        rows = [row for batch in read.rows() for row in batch]
        assert [row.cells for row in rows] == [
            ["Full name", "E-mail Address", "Phone", "Balance", "Active", "", "ZIP"],
            ["José Müller", "jose@example.com", "15551234567", "1.5", "TRUE", "", "02134"],
            ["Ann & Bo <x>", "ann@example.com", "", "-3", "FALSE", "", "2134"],
            ["Zoë", "zoe@example.com"],
        ]
        assert [row.line for row in rows] == [1, 2, 3, 5]
        assert (read.info.name, read.info.sheets) == ("Customers", ["Customers", "Other"])
        assert cells_of(out.getvalue(), "other") == [["x"]]

    def test_merged_header_cells_are_reported(self) -> None:
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.append(["Name", None, "email"])
        sheet.append(["First", "Last", "e"])
        sheet.merge_cells("A1:B1")
        out = io.BytesIO()
        book.save(out)
        read = reader(out.getvalue())
        rows = [row.cells for batch in read.rows() for row in batch]
        assert rows[0] == ["Name", "", "email"]
        assert read.info.merged == ["A1:B1"]

    def test_first_visible_sheet_unless_named(self) -> None:
        data = workbook(
            [
                ("Hidden", sheet_xml([inline_row(1, ["h"])])),
                ("Data", sheet_xml([inline_row(1, ["d"])])),
            ],
            states={"Hidden": "hidden"},
        )
        assert cells_of(data) == [["d"]]
        assert cells_of(data, "Hidden") == [["h"]]
        assert "no sheet named 'Nope'; its sheets: 'Hidden', 'Data'" in refused(data, "Nope")

    def test_formulas_give_the_saved_value_never_evaluated(self) -> None:
        rows = [
            '<row r="1"><c r="A1"><f>1+1</f><v>2</v></c><c r="B1" t="str"><f>"a"&amp;"b"</f>'
            '<v>ab</v></c><c r="C1" t="e"><f>1/0</f><v>#DIV/0!</v></c></row>',
            '<row r="2"><c r="A2" t="s"><v>0</v></c><c r="B2"><f>WEBSERVICE("http://x")</f></c></row>',
        ]
        read = rows_of(workbook([("S", sheet_xml(rows))], strings=["Ann"]))
        assert read[0].cells == ["2", "ab", "#DIV/0!"]
        assert read[0].error is None
        assert read[1].error is not None
        assert "Cell B2 has a formula but no value saved with it" in read[1].error

    @pytest.mark.parametrize(
        ("xml", "value"),
        [
            ('<c r="A1"><v>1.5551234567E10</v></c>', "15551234567"),
            ('<c r="A1"><v>2.0</v></c>', "2"),
            ('<c r="A1"><v>0.1</v></c>', "0.1"),
            ('<c r="A1" t="b"><v>1</v></c>', "TRUE"),
            ('<c r="A1" t="d"><v>2026-12-01T00:00:00</v></c>', "2026-12-01T00:00:00"),
            (
                '<c r="A1" t="inlineStr"><is><r><t>Ta</t></r><r><t xml:space="preserve">ro </t>'
                "</r><rPh><t>ふりがな</t></rPh></is></c>",
                "Taro ",
            ),
        ],
    )
    def test_cell_types(self, xml: str, value: str) -> None:
        assert cells_of(workbook([("S", sheet_xml([f'<row r="1">{xml}</row>']))])) == [[value]]

    def test_prefixed_xml_without_references(self) -> None:
        """Some writers use a namespace prefix and leave out `r` on rows and cells."""
        xml = (
            f'<x:worksheet xmlns:x="{MAIN}"><x:sheetData><x:row><x:c t="s"><x:v>0</x:v></x:c>'
            '<x:c t="inlineStr"><x:is><x:t>b</x:t></x:is></x:c></x:row><x:row><x:c><x:v>7</x:v>'
            "</x:c></x:row></x:sheetData></x:worksheet>"
        )
        read = rows_of(workbook([("S", xml)], strings=["a & b"]))
        assert [(r.line, r.cells) for r in read] == [(1, ["a & b", "b"]), (2, ["7"])]

    def test_rich_shared_strings(self) -> None:
        sst = (
            f'<sst xmlns="{MAIN}"><si><r><t>Jo</t></r><r><rPr><b/></rPr><t>sé</t></r>'
            '<rPh sb="0" eb="1"><t>ジョ</t></rPh></si><si><t xml:space="preserve"> x </t></si>'
            "<si><t/></si></sst>"
        )
        data = workbook(
            [("S", sheet_xml([shared_row(1, [0, 1, 2])]))],
            strings=[],
            extra={"xl/sharedStrings.xml": sst},
        )
        assert cells_of(data) == [["José", " x "]]


class TestLimits:
    def test_ten_thousand_columns_fail_the_row(self) -> None:
        header = inline_row(1, [f"c{i}" for i in range(10_000)])
        rows = rows_of(workbook([("S", sheet_xml([header, inline_row(2, ["a", "b"])]))]))
        assert (
            rows[0].error
            == f"Row has a cell in column {_ref(MAX_COLUMNS)}1 (an import reads {MAX_COLUMNS})"
        )
        assert rows[1].cells == ["a", "b"]

    def test_ten_megabyte_cell_fails_its_row_only(self) -> None:
        # Incompressible, as real text of that size would be (a run of one letter is a bomb).
        big = random.Random(1).randbytes(5_000_000).hex()
        data = workbook(
            [("S", sheet_xml([shared_row(1, [0]), inline_row(2, [big]), shared_row(3, [1])]))],
            strings=["name", big],
        )
        rows = rows_of(data)
        assert rows[0].cells == ["name"]
        assert rows[1].error == f"Cell A2 has more than {MAX_CELL_CHARS} characters (Excel's limit)"
        assert rows[2].error == f"Cell A3 has more than {MAX_CELL_CHARS} characters (Excel's limit)"

    def test_row_longer_than_64k(self) -> None:
        row = inline_row(1, ["y" * 30_000] * 3)
        assert rows_of(workbook([("S", sheet_xml([row]))]))[0].error == (
            "Row is longer than 65536 characters"
        )

    def test_zip_bomb_refused_before_inflating(self) -> None:
        bomb = sheet_xml([]).replace("<sheetData>", "<sheetData>" + " " * (64 * 1024 * 1024))
        message = refused(workbook([("S", bomb)]))
        assert "compressed" in message
        assert f"the limit is {xlsx_zip.MAX_RATIO} to 1" in message

    def test_lying_table_of_contents(self) -> None:
        """A part that inflates past the size its zip entry declares is cut, not read on."""
        data = bytearray(workbook([("S", sheet_xml([inline_row(1, ["a" * 5000])]))]))
        archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
        info = archive.getinfo("xl/worksheets/sheet1.xml")
        # Declare 100 bytes in both the local header and the central directory.
        data[info.header_offset + 22 : info.header_offset + 26] = (100).to_bytes(4, "little")
        for start in _central_entries(bytes(data)):
            name_length = int.from_bytes(data[start + 28 : start + 30], "little")
            if data[start + 46 : start + 46 + name_length] == b"xl/worksheets/sheet1.xml":
                data[start + 24 : start + 28] = (100).to_bytes(4, "little")
        assert "damaged" in refused(bytes(data))

    def test_total_inflated_limit(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(xlsx_zip, "MAX_TOTAL_BYTES", 2000)
        data = workbook([("S", sheet_xml([inline_row(1, ["a" * 3000])]))])
        assert "would inflate to more than 2000 bytes" in refused(data)


def _ref(column: int) -> str:
    from filestore.imports.xlsx_sheet import column_letters

    return column_letters(column)


def _central_entries(data: bytes) -> list[int]:
    found, start = [], data.find(b"PK\x01\x02")
    while start >= 0:
        found.append(start)
        start = data.find(b"PK\x01\x02", start + 4)
    return found


class TestNotAWorkbook:
    @pytest.mark.parametrize(
        ("data", "words"),
        [
            (ole2("\x06DataSpaces", "EncryptionInfo", "EncryptedPackage"), "password-protected"),
            (ole2("EncryptedPackage", sector_shift=12), "password-protected"),
            (ole2("Workbook", "\x05SummaryInformation"), "(.xls) are not supported"),
            (ole2("Something"), "an old .xls or a password-protected"),
            (b"<html><table><tr><td>1</td></tr></table></html>", "XML or HTML named .xlsx"),
            (b"name,email\na,b\n", "not a zip file"),
            (b"", "not a zip file"),
        ],
    )
    def test_refused_with_what_it_is(self, data: bytes, words: str) -> None:
        message = refused(data)
        assert words in message
        if "not a zip" in words or ".xls)" in words:
            assert "save it as .xlsx" in message

    def test_xlsb_and_ods(self) -> None:
        assert ".xlsb" in refused(workbook(extra={"xl/workbook.bin": b"\x00"}))
        ods = io.BytesIO()
        with zipfile.ZipFile(ods, "w") as archive:
            archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
            archive.writestr("content.xml", "<x/>")
        assert ".ods" in refused(ods.getvalue())

    def test_no_worksheets(self) -> None:
        assert refused(workbook([])) == "The workbook has no worksheets"

    def test_damaged_zip(self) -> None:
        data = workbook([("S", sheet_xml([inline_row(1, ["a"] * 200)]))])
        start = data.index(b"PK\x03\x04", data.index(b"xl/worksheets/sheet1.xml") - 60)
        broken = data[: start + 80] + bytes(200) + data[start + 280 :]
        assert "damaged" in refused(broken)

    def test_doctype_refused(self) -> None:
        xml = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>' + sheet_xml([])
        assert "DOCTYPE" in refused(workbook([("S", xml)]))


class TestStreaming:
    @given(
        cut=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=6),
        values=st.lists(
            st.lists(
                st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"])), max_size=4
            ),
            max_size=12,
        ),
    )
    @settings(max_examples=75, deadline=None)
    def test_chunk_boundaries_do_not_change_rows(
        self, cut: list[int], values: list[list[str]]
    ) -> None:
        xml = sheet_xml([inline_row(i + 1, row) for i, row in enumerate(values)]).encode()
        pieces, position, index = [], 0, 0
        while position < len(xml):
            pieces.append(xml[position : position + cut[index % len(cut)]])
            position += cut[index % len(cut)]
            index += 1
        scanned = [r for batch in SheetScan(SharedStrings()).rows(pieces, 2) for r in batch]
        got = [(r.line, r.cells) for r in scanned]
        assert got == [(i + 1, _trimmed(row)) for i, row in enumerate(values) if any(row)]

    @given(
        strings=st.lists(st.text(max_size=30).map(lambda s: s.replace("\x00", "")), max_size=3000)
    )
    @settings(max_examples=30, deadline=None)
    def test_compressed_shared_strings(self, strings: list[str]) -> None:
        table = SharedStrings()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(shared_strings_module, "PLAIN_LIMIT_CHARS", 100)
            table.extend(strings[: len(strings) // 2])
            table.extend(strings[len(strings) // 2 :])
            table.finish()
        assert len(table) == len(strings)
        for index in sorted(range(len(strings)), key=lambda i: (i * 7919) % (len(strings) or 1)):
            assert table.get(index) == strings[index]
        with pytest.raises(IndexError):
            table.get(len(strings))

    @given(
        data=st.binary(min_size=1, max_size=3000),
        reads=st.lists(st.tuples(st.integers(0, 3100), st.integers(0, 700)), max_size=20),
        block=st.integers(min_value=1, max_value=512),
    )
    @settings(max_examples=50, deadline=None)
    def test_range_file_reads_what_slicing_reads(
        self, data: bytes, reads: list[tuple[int, int]], block: int
    ) -> None:
        file = RangeFile(fetcher(data), len(data), block_size=block, cached=2)
        for offset, size in reads:
            file.seek(offset)
            assert file.read(size) == data[offset : offset + size]
        file.seek(-1, io.SEEK_END)
        assert file.read() == data[-1:]

    async def test_rows_over_ranged_reads_from_the_store(self, tmp_path: Path) -> None:
        storage = ObjectStorage(fast_settings("postgresql://unused/x", tmp_path))
        await storage.ensure_buckets()
        strings = [f"user{i}@example.com" for i in range(5000)]
        data = workbook(
            [("S", sheet_xml([shared_row(i + 1, [i]) for i in range(5000)]))], strings=strings
        )

        async def chunks() -> AsyncIterator[memoryview]:
            yield memoryview(data)

        await storage.put_stream("csv-imports", "book.xlsx", chunks(), content_type="x")
        file = FileUpload(bucket="csv-imports", object_key="book.xlsx", file_size=len(data))
        source = object_source(storage, file)
        got: list[str] = []
        async for info, batch in xlsx_source.rows(source, ValidationRules(), batch_rows=700):
            assert info.shared_strings == 5000
            got.extend(row.cells[0] for row in batch)
        assert got == strings


def _trimmed(cells: list[str]) -> list[str]:
    while cells and not cells[-1]:
        cells = cells[:-1]
    return cells
