"""The byte-offset CSV record splitter: records, line numbers and resumable offsets.

A checkpoint is a record's `end_offset`; after a crash the import reopens the file there. So
the property that matters is: resuming at any record boundary yields exactly the records that
follow, with the same line numbers and offsets as an uninterrupted run.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filestore.imports.records import (
    UTF8_BOM,
    Record,
    RecordBatch,
    RecordSplitter,
    UnterminatedQuote,
    record_batches,
)

BIG = 1 << 20


def split(
    data: bytes,
    *,
    chunk: int | list[int] | None = None,
    start_offset: int = 0,
    start_line: int = 1,
    max_record_bytes: int = BIG,
) -> list[Record]:
    """All records of `data` (the file from `start_offset` on), fed in chunks."""
    splitter = RecordSplitter(
        start_offset=start_offset, start_line=start_line, max_record_bytes=max_record_bytes
    )
    records: list[Record] = []
    for piece in chunks(data, chunk):
        records.extend(splitter.feed(piece))
    records.extend(splitter.finish())
    return records


def chunks(data: bytes, sizes: int | list[int] | None) -> list[bytes]:
    if sizes is None:
        return [data]
    if isinstance(sizes, int):
        return [data[i : i + sizes] for i in range(0, len(data), sizes)]
    pieces: list[bytes] = []
    position = 0
    index = 0
    while position < len(data):
        size = sizes[index % len(sizes)]
        pieces.append(data[position : position + size])
        position += size
        index += 1
    return pieces


def cells(record: Record) -> list[str]:
    rows = list(csv.reader([record.data.decode("utf-8")]))
    assert len(rows) == 1, rows
    return rows[0]


def batches(
    data: bytes,
    *,
    start_offset: int = 0,
    start_line: int = 1,
    batch_rows: int = 2,
    chunk: int = 7,
    max_record_bytes: int = BIG,
) -> list[RecordBatch]:
    async def source() -> AsyncIterator[bytes]:
        for piece in chunks(data[start_offset:], chunk):
            yield piece

    async def collect() -> list[RecordBatch]:
        return [
            batch
            async for batch in record_batches(
                source(),
                start_offset=start_offset,
                start_line=start_line,
                max_record_bytes=max_record_bytes,
                batch_rows=batch_rows,
            )
        ]

    return asyncio.run(collect())


class TestSplitter:
    def test_simple_lines_offsets_and_line_numbers(self) -> None:
        data = b"a,b\n1,2\n3,4\n"
        records = split(data)
        assert [r.data for r in records] == [b"a,b", b"1,2", b"3,4"]
        assert [r.line for r in records] == [1, 2, 3]
        assert [r.end_offset for r in records] == [4, 8, 12]
        assert [r.next_line for r in records] == [2, 3, 4]

    def test_quoted_newlines_stay_in_one_record(self) -> None:
        data = b'name,address\n"Doe, John","1 Main St\nApt 2\n"\nJane,x\n'
        records = split(data, chunk=1)
        assert [cells(r) for r in records] == [
            ["name", "address"],
            ["Doe, John", "1 Main St\nApt 2\n"],
            ["Jane", "x"],
        ]
        assert [r.line for r in records] == [1, 2, 5]
        assert records[1].next_line == 5

    def test_doubled_quotes_inside_quoted_field(self) -> None:
        data = b'a\n"say ""hi""\nthere"\nb\n'
        records = split(data, chunk=3)
        assert [cells(r) for r in records] == [["a"], ['say "hi"\nthere'], ["b"]]

    def test_crlf_is_removed_from_data_but_counted_in_offsets(self) -> None:
        data = b'h1,h2\r\n"x\r\ny",2\r\nz,3\r\n'
        records = split(data, chunk=2)
        assert [r.data for r in records] == [b"h1,h2", b'"x\r\ny",2', b"z,3"]
        assert [cells(r) for r in records][1] == ["x\r\ny", "2"]
        assert records[-1].end_offset == len(data)
        assert [r.line for r in records] == [1, 2, 4]

    @pytest.mark.parametrize("chunk", [1, 2, 3, 5, None])
    def test_bom_is_skipped_and_offsets_stay_file_offsets(self, chunk: int | None) -> None:
        data = UTF8_BOM + b"full_name,email\nA,a@x.io\n"
        records = split(data, chunk=chunk)
        assert [r.data for r in records] == [b"full_name,email", b"A,a@x.io"]
        assert records[0].end_offset == len(UTF8_BOM) + len(b"full_name,email\n")
        assert records[-1].end_offset == len(data)

    def test_bom_only_file_has_no_records(self) -> None:
        assert split(UTF8_BOM, chunk=1) == []

    def test_bom_is_not_stripped_when_resuming_mid_file(self) -> None:
        # Resuming never starts at offset 0, so bytes that look like a BOM are data there.
        records = split(UTF8_BOM + b"x\n", start_offset=10)
        assert records[0].data == UTF8_BOM + b"x"

    def test_last_record_without_newline(self) -> None:
        records = split(b"a\nb,c", chunk=1)
        assert [r.data for r in records] == [b"a", b"b,c"]
        assert records[-1].end_offset == 5

    def test_blank_lines_are_records_of_their_own(self) -> None:
        records = split(b"a\n\n\r\nb\n")
        assert [r.data for r in records] == [b"a", b"", b"", b"b"]
        assert [r.line for r in records] == [1, 2, 3, 4]

    def test_unterminated_quote_is_an_error_naming_its_line(self) -> None:
        with pytest.raises(UnterminatedQuote) as raised:
            split(b'a\nb\n"never closed\nmore\n')
        assert raised.value.line == 3
        assert "line 3" in str(raised.value)

    def test_too_long_record_is_flagged_cut_and_does_not_disturb_the_next(self) -> None:
        long_field = b"x" * 10_000
        data = b"h\n" + long_field + b"\nnext\n"
        records = split(data, chunk=333, max_record_bytes=100)
        assert [r.too_long for r in records] == [False, True, False]
        assert len(records[1].data) <= 102
        assert records[1].end_offset == 2 + len(long_field) + 1
        assert records[2].data == b"next"
        assert records[2].line == 3

    def test_record_of_exactly_the_cap_is_not_too_long(self) -> None:
        records = split(b"y" * 100 + b"\r\n", max_record_bytes=100)
        assert not records[0].too_long
        assert records[0].data == b"y" * 100

    def test_non_ascii_bytes_are_kept_whole(self) -> None:
        text = "Zoë,Łódź,東京\n"
        records = split(text.encode(), chunk=1)
        assert records[0].data.decode() == text.strip()


class TestRecordBatches:
    def test_blank_lines_are_skipped_but_consumed(self) -> None:
        data = b"h\n1\n\n2\n\n\n3\n\n"
        result = batches(data, start_offset=2, start_line=2, batch_rows=2, chunk=1)
        assert [[r.data for r in b.records] for b in result] == [[b"1", b"2"], [b"3"]]
        assert [r.line for b in result for r in b.records] == [2, 4, 7]
        # The last batch ends at the end of the file, past the trailing blank line.
        assert result[-1].end_offset == len(data)
        assert result[-1].end_line == 9

    def test_a_batch_ends_just_past_its_last_record(self) -> None:
        data = b"h\n1\n2\n3\n4\n5\n"
        result = batches(data, start_offset=2, start_line=2, batch_rows=2)
        assert [(b.end_offset, b.end_line) for b in result] == [(6, 4), (10, 6), (12, 7)]

    def test_empty_tail_yields_one_empty_batch_at_the_end(self) -> None:
        data = b"h\n"
        result = batches(data, start_offset=2, start_line=2)
        assert len(result) == 1
        assert result[0].records == []
        assert (result[0].end_offset, result[0].end_line) == (2, 2)

    def test_resuming_at_every_batch_end_gives_the_rest(self) -> None:
        data = b'h\n1\n"2\n2"\n\n3\n4\r\n5'
        whole = batches(data, start_offset=2, start_line=2, batch_rows=1)
        all_records = [(r.line, r.data) for b in whole for r in b.records]
        done = 0
        for batch in whole:
            done += len(batch.records)
            rest = batches(
                data,
                start_offset=batch.end_offset,
                start_line=batch.end_line,
                batch_rows=3,
                chunk=2,
            )
            assert [(r.line, r.data) for b in rest for r in b.records] == all_records[done:]


# -- property: resuming at any record boundary, with any chunking -------------------------------

FIELD_TEXT = st.text(alphabet=st.sampled_from(list('ab ,"\n\r;é€𝄞\t')), max_size=12) | st.text(
    max_size=6
)
ROWS = st.lists(st.lists(FIELD_TEXT, min_size=1, max_size=4), min_size=1, max_size=25)


def write_csv(rows: list[list[str]], terminator: str, bom: bool, trailing: bool) -> bytes:
    """RFC 4180 CSV. Python's writer leaves a field with a bare CR unquoted when the line
    terminator is LF (ambiguous: no reader can parse it back), so such rows are fully quoted."""
    buffer = io.StringIO()
    minimal = csv.writer(buffer, lineterminator=terminator)
    quote_all = csv.writer(buffer, lineterminator=terminator, quoting=csv.QUOTE_ALL)
    for row in rows:
        (quote_all if any("\r" in cell for cell in row) else minimal).writerow(row)
    text = buffer.getvalue()
    if not trailing:
        text = text.removesuffix(terminator)
    return (UTF8_BOM if bom else b"") + text.encode("utf-8")


def record_key(record: Record) -> tuple[int, bytes, int, int, bool]:
    return (record.line, record.data, record.end_offset, record.next_line, record.too_long)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=ROWS,
    terminator=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    trailing=st.booleans(),
    sizes=st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=8),
)
def test_resume_from_any_record_end_yields_exactly_the_remaining_records(
    rows: list[list[str]], terminator: str, bom: bool, trailing: bool, sizes: list[int]
) -> None:
    data = write_csv(rows, terminator, bom, trailing)
    records = split(data, chunk=sizes)

    # Every row written is one record, and parses back to the same cells.
    assert [cells(r) for r in records] == rows
    # Offsets tile the file and line numbers count physical lines (newlines inside quoted
    # fields included): a record spans exactly the newlines between its start and its end.
    start = len(UTF8_BOM) if bom else 0
    line = 1
    for record in records:
        assert record.line == line
        newlines = data.count(b"\n", start, record.end_offset)
        ends_with_newline = data[record.end_offset - 1 : record.end_offset] == b"\n"
        assert record.next_line - record.line == newlines + (0 if ends_with_newline else 1)
        start, line = record.end_offset, record.next_line
    assert start == len(data)

    # Resume after each record, fed with a different chunking: the same remaining records.
    for index, record in enumerate(records):
        rest = split(
            data[record.end_offset :],
            chunk=list(reversed(sizes)),
            start_offset=record.end_offset,
            start_line=record.next_line,
        )
        assert [record_key(r) for r in rest] == [record_key(r) for r in records[index + 1 :]]


@settings(max_examples=50, deadline=None)
@given(
    rows=ROWS,
    batch_rows=st.integers(min_value=1, max_value=6),
    chunk=st.integers(min_value=1, max_value=40),
)
def test_record_batches_resume_from_every_checkpoint(
    rows: list[list[str]], batch_rows: int, chunk: int
) -> None:
    data = write_csv(rows, "\r\n", bom=True, trailing=True)
    header = split(data)[0]
    whole = batches(
        data,
        start_offset=header.end_offset,
        start_line=header.next_line,
        batch_rows=batch_rows,
        chunk=chunk,
    )
    expected = [(r.line, r.data) for b in whole for r in b.records]
    assert expected == [(r.line, r.data) for r in split(data)[1:] if r.data.strip()]
    seen = 0
    for batch in whole:
        seen += len(batch.records)
        rest = batches(
            data,
            start_offset=batch.end_offset,
            start_line=batch.end_line,
            batch_rows=batch_rows,
            chunk=chunk + 1,
        )
        assert [(r.line, r.data) for b in rest for r in b.records] == expected[seen:]
