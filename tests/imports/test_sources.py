"""A CSV in any supported encoding and dialect, read the way the import reads it: the first
pass, then batches from a checkpoint. The property that matters for exactly-once imports:
resuming at any batch's checkpoint (a file offset) gives exactly the rows that follow."""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
from collections.abc import AsyncIterator

from hypothesis import given, settings
from hypothesis import strategies as st

from filestore.imports import csv_source, xlsx_source
from filestore.imports.records import ImportSource
from filestore.imports.rows import ValidationRules, parse_header
from tests.imports.xlsx_files import shared_row, sheet_xml, workbook

BOMS = {
    "utf-8": codecs.BOM_UTF8,
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
}
WIDE = st.characters(exclude_categories=["Cs", "Cc"], exclude_characters="\x00")
NARROW = st.characters(codec="cp1252", exclude_categories=["Cc"], exclude_characters="\x00")


def source_of(data: bytes, chunk: int) -> ImportSource:
    async def open_from(offset: int) -> AsyncIterator[bytes]:
        for start in range(offset, len(data), chunk):
            yield data[start : start + chunk]

    return ImportSource(size=len(data), open=open_from)


Batch = tuple[int, int, list[tuple[int, list[str]]]]


async def read_all(
    source: ImportSource, fmt: csv_source.CsvFormat, offset: int, line: int
) -> list[Batch]:
    """[(end_offset, end_line, [(line, cells)])] of every batch from `offset`."""
    out: list[Batch] = []
    async for batch in csv_source.batches(source, fmt, offset=offset, line=line, batch_rows=3):
        rows = [
            (r.line, next(csv.reader([r.data.decode()], delimiter=fmt.dialect.delimiter), []))
            for r in batch.records
        ]
        out.append((batch.end_offset, batch.end_line, rows))
    return out


@st.composite
def files(draw: st.DrawFn) -> tuple[bytes, str, list[list[str]]]:
    encoding = draw(st.sampled_from(["utf-8", "utf-16-le", "utf-16-be", "windows-1252"]))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    alphabet = NARROW if encoding == "windows-1252" else WIDE
    cell = st.text(alphabet, max_size=8).filter(lambda c: c.strip() == c)
    width = draw(st.integers(min_value=2, max_value=4))
    rows = draw(st.lists(st.lists(cell, min_size=width, max_size=width), min_size=1, max_size=25))
    rows = [[f"r{i}", *row[1:]] for i, row in enumerate(rows)]  # never a blank record
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(
        [[f"h{i}" for i in range(width)], *rows]
    )
    text = out.getvalue()
    bom = BOMS.get(encoding, b"") if draw(st.booleans()) or encoding.startswith("utf-16") else b""
    return bom + text.encode(encoding), encoding, rows


class TestResume:
    @given(file=files(), chunk=st.integers(min_value=1, max_value=64))
    @settings(max_examples=60, deadline=None)
    def test_every_checkpoint_resumes_to_the_same_rows(
        self, file: tuple[bytes, str, list[list[str]]], chunk: int
    ) -> None:
        data, encoding, rows = file
        source = source_of(data, chunk)

        async def run() -> None:
            rules = ValidationRules(encoding=encoding)
            prefix = await source.read(0, 64 * 1024)
            fmt = await csv_source.inspect(source, prefix, rules)
            scan = await csv_source.prescan(source, fmt)
            assert scan.data_rows == len(rows)
            header = parse_header(scan.header_text, delimiter=fmt.dialect.delimiter)
            assert header == [f"h{i}" for i in range(len(rows[0]))]
            batches = await read_all(source, fmt, scan.data_offset, scan.data_line)
            assert [cells for b in batches for _, cells in b[2]] == rows
            assert batches[-1][0] == len(data)
            for index, (offset, line, _) in enumerate(batches):
                tail = await read_all(source, fmt, offset, line)
                assert [r for b in tail for r in b[2]] == [
                    r for b in batches[index + 1 :] for r in b[2]
                ]

        asyncio.run(run())

    def test_detected_without_override(self) -> None:
        data = "Kundenexport\r\nname;email\r\nZoë;z@x.de\r\n".encode("cp1252")

        async def run() -> csv_source.CsvFormat:
            source = source_of(data, 5)
            return await csv_source.inspect(source, await source.read(0, 99), ValidationRules())

        fmt = asyncio.run(run())
        assert (fmt.detected.encoding, fmt.dialect.delimiter, fmt.dialect.header_row) == (
            "windows-1252",
            ";",
            1,
        )
        assert csv_source.CsvFormat.from_json(fmt.to_json()).to_json() == fmt.to_json()


class TestWorkbookResume:
    def test_rows_after_a_checkpoint_and_the_count_from_dimension(self) -> None:
        strings = ["full_name", "email"] + [f"u{i}" for i in range(40)]
        rows = [shared_row(1, [0, 1])] + [shared_row(i + 2, [i + 2]) for i in range(40)]
        head = '<dimension ref="A1:B41"/>'
        data = workbook([("S", sheet_xml(rows, head=head))], strings=strings)
        source = source_of(data, 7)
        source.read_range = None  # reads go through open(offset), as for a local file

        async def run() -> tuple[int, list[list[str]]]:
            scan = await xlsx_source.prescan(source, ValidationRules())
            assert scan.header == ["full_name", "email"]
            tail: list[list[str]] = []
            async for batch in xlsx_source.batches(
                source, ValidationRules(), after_line=30, batch_rows=4
            ):
                tail.extend(row.cells for row in batch)
            return scan.data_rows, tail

        total, tail = asyncio.run(run())
        assert total == 40
        assert tail == [[f"u{i}"] for i in range(29, 40)]
