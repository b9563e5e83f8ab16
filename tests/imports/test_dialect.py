"""Sniffing a CSV's delimiter, quote character and header row from the start of the file."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filestore.imports.dialect import DELIMITERS, DialectError, sniff

CELL = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789@.-_éü"), min_size=1, max_size=12
)


def written(rows: list[list[str]], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


class TestSniff:
    @pytest.mark.parametrize(
        ("text", "delimiter", "columns"),
        [
            ("name,email\nAna,a@x.com\nBo,b@x.com\n", ",", 2),
            ("Name;E-mail Address;Phone\nAna;a@x.com;+1 555\n", ";", 3),
            ("name\temail\nAna\ta@x.com\n", "\t", 2),
            ("name|email\nAna|a@x.com\n", "|", 2),
        ],
    )
    def test_delimiters(self, text: str, delimiter: str, columns: int) -> None:
        dialect = sniff(text, complete=True)
        assert (dialect.delimiter, dialect.columns, dialect.header_row) == (
            delimiter,
            columns,
            0,
        )

    def test_european_decimal_commas_do_not_win(self) -> None:
        """European Excel: `;` between fields because `,` is the decimal separator."""
        dialect = sniff("name;balance;rate\nAna;1,50;0,2\nBo;2,75;0,1\n", complete=True)
        assert dialect.delimiter == ";"
        assert "semicolon-separated, 3 columns" in dialect.reason

    def test_quoted_delimiters_inside_fields(self) -> None:
        dialect = sniff('"Smith, John";a@x.com\n"Doe, Jane";b@x.com\n', complete=True)
        assert dialect.delimiter == ";"

    def test_title_rows_above_the_header(self) -> None:
        text = "Customer export\nGenerated 2026-12-01\n\nname,email,phone\nAna,a@x.com,1\n"
        dialect = sniff(text, complete=True)
        assert (dialect.delimiter, dialect.header_row) == (",", 2)
        assert "header on record 3" in dialect.reason

    def test_single_quotes_only_when_fields_open_with_them(self) -> None:
        assert sniff("'name','email'\n'Ana','a@x'\n", complete=True).quotechar == "'"
        assert sniff("name,email\nO'Brien,o@x\nD'Arcy,d@x\n", complete=True).quotechar == '"'

    def test_a_cut_last_line_is_not_counted(self) -> None:
        text = "a;b;c\n1;2;3\n4;5;6\n7,8"
        dialect = sniff(text)
        assert (dialect.delimiter, dialect.columns) == (";", 3)
        assert "3 of the first 3 records" in dialect.reason

    def test_forced_delimiter(self) -> None:
        dialect = sniff("a;b\n1;2\n", complete=True, delimiter=",")
        assert (dialect.delimiter, dialect.columns) == (",", 1)
        assert "as given" in dialect.reason

    def test_one_column(self) -> None:
        dialect = sniff("email\na@x.com\n", complete=True)
        assert dialect.columns == 1
        assert "one column only" in dialect.reason

    @pytest.mark.parametrize(
        ("text", "message"),
        [("", "empty"), ("\n\n", "empty"), ("a,b\r1,2\r", "CR alone")],
    )
    def test_refused(self, text: str, message: str) -> None:
        with pytest.raises(DialectError, match=message):
            sniff(text, complete=True)

    def test_broken_quoting_from_the_first_record(self) -> None:
        with pytest.raises(DialectError, match="not valid CSV"):
            sniff('"name,email\nAna;a|b\tc\n', complete=True)

    def test_unterminated_quote_later_is_left_to_the_import(self) -> None:
        """The import reports it with its line; the sniff uses the records before it."""
        dialect = sniff('name;email\nAna;a@x\n"Bob;b@x\n', complete=True)
        assert (dialect.delimiter, dialect.columns) == (";", 2)

    def test_trailing_delimiters_do_not_make_the_header_a_title(self) -> None:
        dialect = sniff("name,email\nAna,a@x,\nBo,b@x,\n", complete=True)
        assert dialect.header_row == 0

    @given(
        delimiter=st.sampled_from(DELIMITERS),
        columns=st.integers(min_value=2, max_value=8),
        data=st.data(),
    )
    @settings(max_examples=75, deadline=None)
    def test_written_by_csv_writer_is_sniffed(
        self, delimiter: str, columns: int, data: st.DataObject
    ) -> None:
        """Any table written by a CSV writer, cells holding the delimiter, quotes or newlines."""
        cell = st.one_of(
            CELL,
            st.tuples(CELL, st.sampled_from([delimiter, '"', "\n"]), CELL).map("".join),
        )
        rows = data.draw(
            st.lists(st.lists(cell, min_size=columns, max_size=columns), min_size=2, max_size=30)
        )
        dialect = sniff(written(rows, delimiter), complete=True)
        assert (dialect.delimiter, dialect.columns, dialect.header_row) == (
            delimiter,
            columns,
            0,
        )
        assert (
            list(
                csv.reader(
                    io.StringIO(written(rows, delimiter)),
                    delimiter=dialect.delimiter,
                    quotechar=dialect.quotechar,
                )
            )
            == rows
        )
