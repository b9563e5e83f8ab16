"""Pure logic of an import: header → field mapping, row validation, batch parsing, the
spreadsheet-safe errors.csv, and the schedule of the stalled-job retry."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from collections.abc import AsyncIterator
from datetime import datetime

import croniter  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from filestore.files import tasks as files_tasks
from filestore.imports.fields import CUSTOMER_FIELDS, FIELD_LIMITS, normalise
from filestore.imports.parsing import parse_batch
from filestore.imports.records import MAX_RECORD_BYTES, Record
from filestore.imports.rows import (
    REDACTED,
    ColumnPlan,
    ImportFileError,
    RowError,
    ValidationRules,
    ValidRow,
    parse_header,
    plan_columns,
    validate_row,
)
from filestore.imports.schemas import CsvImportRequest
from filestore.jobs import tasks as jobs_tasks
from filestore.jobs.errors_csv import HEADER, neutralise, render_rows, stream_csv

SEED_MAPPING = {"name": "full_name", "email": "email", "phone": "phone"}
# What the ISP platform's own test client sends: field aliases on the right.
ISP_CLIENT_MAPPING = {"name": "name", "email": "email", "phone": "phone"}
SEED_HEADER = [
    "full_name",
    "email",
    "phone",
    "address",
    "city",
    "state",
    "postal_code",
    "country",
    "password",
]
RULES = ValidationRules()


def plan(
    header: list[str], mapping: dict[str, str] | None = None, rules: ValidationRules = RULES
) -> ColumnPlan:
    return plan_columns(header, mapping or {}, rules)


def row(
    plan_: ColumnPlan, rules: ValidationRules = RULES, line: int = 2, **values: str
) -> ValidRow | RowError | None:
    return row_of(plan_, values, rules, line)


def row_of(
    plan_: ColumnPlan, values: dict[str, str], rules: ValidationRules = RULES, line: int = 2
) -> ValidRow | RowError | None:
    """Validate a row given by column name (missing columns are empty)."""
    cells = [values.get(name, "") for name in plan_.header]
    return validate_row(line, cells, plan_, rules)


def valid(result: ValidRow | RowError | None) -> ValidRow:
    assert isinstance(result, ValidRow), result
    return result


def error(result: ValidRow | RowError | None) -> RowError:
    assert isinstance(result, RowError), result
    return result


class TestMapping:
    def test_seed_mapping_reads_the_name_column_into_full_name(self) -> None:
        p = plan(["name", "email", "phone"], SEED_MAPPING)
        assert p.field_index == {"full_name": 0, "email": 1, "phone": 2}
        assert p.warnings == []
        assert p.unknown_columns == []

    def test_seed_sample_header_works_with_the_seed_mapping(self) -> None:
        # The seed's sample file has `full_name`, not `name`: the mapped column is missing
        # (a warning), and full_name is found by its name.
        p = plan(SEED_HEADER, SEED_MAPPING)
        assert p.field_index == {name: i for i, name in enumerate(SEED_HEADER)}
        assert len(p.warnings) == 1
        assert "'name'" in p.warnings[0]
        assert "not in the file" in p.warnings[0]

    def test_seed_sample_header_works_without_mapping(self) -> None:
        p = plan(SEED_HEADER)
        assert p.field_index == {name: i for i, name in enumerate(SEED_HEADER)}
        assert p.warnings == []

    @pytest.mark.parametrize(
        ("column", "field"),
        [
            ("Full Name", "full_name"),
            ("FULL_NAME", "full_name"),
            ("E-Mail", "email"),
            ("postal code", "postal_code"),
            (" Postal_Code ", "postal_code"),
            ("COUNTRY", "country"),
        ],
    )
    def test_columns_match_fields_by_normalised_name(self, column: str, field: str) -> None:
        header = [column.strip()] + [n for n in ("full_name", "email") if n != field]
        p = plan(header)
        assert p.field_index[field] == 0

    def test_normalise_ignores_case_spaces_dashes_underscores(self) -> None:
        assert normalise(" Postal_Code ") == normalise("postal-code") == "postalcode"

    def test_mapping_column_matched_by_normalised_name(self) -> None:
        p = plan(["Customer Name", "email"], {"customer_name": "full_name"})
        assert p.field_index["full_name"] == 0

    def test_mapping_wins_over_a_column_named_like_the_field(self) -> None:
        p = plan(["name", "full_name", "email"], {"name": "full_name"})
        assert p.field_index["full_name"] == 0
        assert p.unknown_columns == ["full_name"]

    def test_two_columns_mapped_to_one_field_are_joined_in_column_order(self) -> None:
        # Mapped last name first: the file's column order decides.
        p = plan(["First", "Last", "email"], {"Last": "full_name", "First": "full_name"})
        assert p.joined == {"full_name": [0, 1]}
        restored = ColumnPlan.from_json(p.to_json())
        assert (
            valid(row(restored, First="Ada", Last="Lovelace", email="a@example.com")).values[
                "full_name"
            ]
            == "Ada Lovelace"
        )
        # An empty part leaves no double space; the joined value's length is checked.
        assert (
            valid(row(p, First="", Last="Lovelace", email="a@example.com")).values["full_name"]
            == "Lovelace"
        )
        too_long = error(row(p, First="x" * 200, Last="y" * 60, email="a@example.com"))
        assert "longer than 255" in too_long.error

    def test_unknown_columns_are_listed(self) -> None:
        p = plan(["full_name", "email", "notes", "Customer Since"])
        assert p.unknown_columns == ["notes", "Customer Since"]

    def test_missing_required_field_names_it(self) -> None:
        with pytest.raises(ImportFileError, match="email") as raised:
            plan(["full_name", "phone"])
        assert "full_name" not in str(raised.value).split("(")[0]

    def test_missing_both_required_fields_names_both(self) -> None:
        with pytest.raises(ImportFileError) as raised:
            plan(["phone", "city"], SEED_MAPPING)
        message = str(raised.value)
        assert "full_name" in message
        assert "email" in message

    def test_email_column_optional_when_not_required(self) -> None:
        p = plan(["full_name"], rules=ValidationRules(email_required=False))
        assert "email" not in p.field_index
        assert any("no email column" in w for w in p.warnings)

    def test_plan_survives_a_json_round_trip(self) -> None:
        p = plan(["name", "E-mail", "x"], {"name": "full_name"})
        assert ColumnPlan.from_json(p.to_json()) == p

    def test_header_cells_are_stripped_and_quoted_ones_parsed(self) -> None:
        assert parse_header(' full_name ,"e,mail"') == ["full_name", "e,mail"]

    @pytest.mark.parametrize("line", ["", "  ", ",,", " , "])
    def test_blank_header_is_an_error(self, line: str) -> None:
        with pytest.raises(ImportFileError, match="no header"):
            parse_header(line)

    def test_rules_from_params_default_to_the_seed(self) -> None:
        assert ValidationRules.from_params({}) == ValidationRules(True, "digits_only", False)
        rules = ValidationRules.from_params(
            {"email_required": False, "phone_format": "any", "dry_run": True}
        )
        assert rules == ValidationRules(False, "any", True)


SEED_PLAN = plan(SEED_HEADER)


class TestAliases:
    """The obvious other words for a field, on the field side of a mapping and in headers."""

    def test_the_isp_platforms_own_payload_is_accepted(self) -> None:
        request = CsvImportRequest.model_validate(
            {"file_upload_id": 1, "mapping_config": ISP_CLIENT_MAPPING}
        )
        p = plan(["name", "email", "phone"], request.mapping_config)
        assert p.field_index == {"full_name": 0, "email": 1, "phone": 2}
        assert p.warnings == ["column 'name' mapped to 'name', read as full_name"]

    @pytest.mark.parametrize(
        ("alias", "field"),
        [
            ("name", "full_name"),
            ("zip", "postal_code"),
            ("zip_code", "postal_code"),
            ("postcode", "postal_code"),
            ("e-mail", "email"),
            ("mobile", "phone"),
            ("telephone", "phone"),
            ("province", "state"),
            ("region", "state"),
            ("street", "address"),
        ],
    )
    def test_a_mapping_target_may_be_an_alias(self, alias: str, field: str) -> None:
        CsvImportRequest.model_validate({"file_upload_id": 1, "mapping_config": {"col": alias}})
        header = ["col", *(n for n in ("full_name", "email") if n != field)]
        p = plan(header, {"col": alias})
        assert p.field_index[field] == 0
        assert f"column 'col' mapped to '{alias}', read as {field}" in p.warnings

    @pytest.mark.parametrize("target", ["fullname", "nickname", "password_hash", "zipcode"])
    def test_other_targets_are_still_refused_naming_them(self, target: str) -> None:
        with pytest.raises(ValidationError, match=target):
            CsvImportRequest.model_validate(
                {"file_upload_id": 1, "mapping_config": {"col": target}}
            )

    def test_header_aliases_are_read_with_a_warning_each(self) -> None:
        p = plan(["Name", "E-Mail", "Zip", "Mobile", "Province", "Street", "Notes"])
        assert p.field_index == {
            "full_name": 0,
            "email": 1,
            "postal_code": 2,
            "phone": 3,
            "state": 4,
            "address": 5,
        }
        assert p.unknown_columns == ["Notes"]
        assert p.warnings == [
            "column 'Name' read as full_name",
            "column 'Zip' read as postal_code",
            "column 'Mobile' read as phone",
            "column 'Province' read as state",
            "column 'Street' read as address",
        ]

    def test_a_field_named_in_the_header_wins_over_an_alias(self) -> None:
        p = plan(["name", "email", "full_name", "zip", "postal_code"])
        assert (p.field_index["full_name"], p.field_index["postal_code"]) == (2, 4)
        assert p.unknown_columns == ["name", "zip"]
        assert p.warnings == []


class TestValidation:
    def test_seed_row_is_valid(self) -> None:
        result = valid(
            row(
                SEED_PLAN,
                full_name="John Doe",
                email="john@example.com",
                phone="1234567890",
                address="123 Main St",
                city="Anytown",
                state="CA",
                postal_code="12345",
                country="USA",
                password="Tr0mbone-Quartz",
            )
        )
        assert result.values["full_name"] == "John Doe"
        assert result.values["password"] == "Tr0mbone-Quartz"
        assert result.line == 2

    def test_values_are_stripped_and_empty_ones_become_none(self) -> None:
        result = valid(row(SEED_PLAN, full_name="  Ann  ", email=" ann@example.com ", city=" "))
        assert result.values["full_name"] == "Ann"
        assert result.values["email"] == "ann@example.com"
        assert result.values["city"] is None
        assert result.values["password"] is None

    @pytest.mark.parametrize(
        "email",
        [
            "plain",
            "a@b",
            "a@b.c",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            "a@exa mple.com",
            "a,b@example.com",
            "<a@example.com>",
            "a@example.com.",
            '=HYPERLINK("http://x","y")',
            "a@ex(ample).com",
        ],
    )
    def test_invalid_email_fails_with_its_column_and_value(self, email: str) -> None:
        result = error(row(SEED_PLAN, full_name="X", email=email))
        assert result.column == "email"
        assert result.value == email
        assert "e-mail" in result.error
        assert result.row == 2

    @pytest.mark.parametrize(
        "email", ["john@example.com", "J.O'Hara+tag@sub.example.co.uk", "über@bücher.de", "x@y.io"]
    )
    def test_valid_emails(self, email: str) -> None:
        assert valid(row(SEED_PLAN, full_name="X", email=email)).values["email"] == email

    @pytest.mark.parametrize(
        ("phone", "digits"),
        [
            ("1234567890", "1234567890"),
            ("+1 (555) 123-45.67", "15551234567"),
            ("  555 1234 ", "5551234"),
            ("(0)20-7946.0958", "02079460958"),
            ("+44 20", "4420"),
        ],
    )
    def test_phone_digits_only_strips_separators_and_leading_plus(
        self, phone: str, digits: str
    ) -> None:
        result = valid(row(SEED_PLAN, full_name="X", email="x@example.com", phone=phone))
        assert result.values["phone"] == digits

    @pytest.mark.parametrize(
        "phone", ["555-CALL", "12+34", "++123", "1/2", "١٢٣٤", "123#4", "+", "--", "0x12"]
    )
    def test_phone_with_anything_but_digits_fails(self, phone: str) -> None:
        result = error(row(SEED_PLAN, full_name="X", email="x@example.com", phone=phone))
        assert result.column == "phone"
        assert result.value == phone
        assert "digits" in result.error

    def test_phone_optional(self) -> None:
        assert valid(row(SEED_PLAN, full_name="X", email="x@example.com")).values["phone"] is None

    def test_phone_format_any_keeps_the_value(self) -> None:
        rules = ValidationRules(phone_format="any")
        result = valid(
            row(SEED_PLAN, rules, full_name="X", email="x@example.com", phone="ext. 12 / ask Bob")
        )
        assert result.values["phone"] == "ext. 12 / ask Bob"

    def test_full_name_required(self) -> None:
        result = error(row(SEED_PLAN, email="x@example.com"))
        assert result.column == "full_name"
        assert "full_name is required" in result.error

    def test_email_required_by_default(self) -> None:
        result = error(row(SEED_PLAN, full_name="X"))
        assert result.column == "email"
        assert "email is required" in result.error

    def test_row_without_email_is_skipped_when_email_is_optional(self) -> None:
        assert row(SEED_PLAN, ValidationRules(email_required=False), full_name="X") is None

    @pytest.mark.parametrize("cells", [["X"], ["X", "x@example.com"], ["a"] * 10])
    def test_ragged_rows_fail(self, cells: list[str]) -> None:
        result = error(validate_row(7, cells, SEED_PLAN, RULES))
        assert result.row == 7
        assert f"{len(cells)} columns" in result.error
        assert "9" in result.error

    @pytest.mark.parametrize("field", [f for f in CUSTOMER_FIELDS if f != "password"])
    def test_field_length_limits(self, field: str) -> None:
        limit = FIELD_LIMITS[field]
        values = {"full_name": "X", "email": "x@example.com"}
        values[field] = ("9" * limit) if field != "email" else ("a" * (limit - 12) + "@example.com")
        assert isinstance(row_of(SEED_PLAN, values), ValidRow)
        values[field] = "9" * (limit + 1)
        result = error(row_of(SEED_PLAN, values))
        assert result.column == field
        assert f"longer than {limit}" in result.error
        assert result.value is not None
        assert len(result.value) <= 200

    def test_a_too_long_password_is_never_shown(self) -> None:
        secret = "S3cret!" * 200
        result = error(row(SEED_PLAN, full_name="X", email="x@example.com", password=secret))
        assert result.column == "password"
        assert result.value == REDACTED
        assert "S3cret" not in str(result.to_json())

    def test_a_bad_row_with_a_password_does_not_carry_it(self) -> None:
        for values in (
            {"email": "bad"},
            {"email": "x@example.com", "phone": "call me"},
            {"email": "", "full_name": "X"},
            {"email": "x@example.com"},
        ):
            result = error(row_of(SEED_PLAN, {**values, "password": "hunter2-Secret"}))
            assert "hunter2" not in str(result.to_json())

    def test_error_json_shape(self) -> None:
        result = error(row(SEED_PLAN, full_name="X", email="nope", line=5))
        assert result.to_json() == {
            "row": 5,
            "column": "email",
            "value": "nope",
            "error": "email is not a valid e-mail address",
        }


def record(line: int, data: bytes, too_long: bool = False) -> Record:
    return Record(line=line, data=data, end_offset=0, next_line=line + 1, too_long=too_long)


class TestParseBatch:
    def test_valid_invalid_skipped_too_long_and_broken_rows(self) -> None:
        p = plan(["full_name", "email", "address"])
        records = [
            record(2, b"Ann,ann@example.com,x"),
            record(3, b'"Bob","bob@example.com","1 Main St\nFlat 2"'),
            record(5, b"Carl,not-an-email,x"),
            record(6, b"Dan,dan@example.com"),
            record(7, b"x" * 100, too_long=True),
            record(8, b'Eve,eve@example.com,a"b\nc"'),  # a quote inside an unquoted field
            record(10, "Zoë,zoe@example.com,Łódź".encode()),
        ]
        outcome = parse_batch(records, p, RULES)
        assert [r.line for r in outcome.valid] == [2, 3, 10]
        assert outcome.valid[1].values["address"] == "1 Main St\nFlat 2"
        assert outcome.valid[2].values["full_name"] == "Zoë"
        errors = {e.row: e for e in outcome.errors}
        assert sorted(errors) == [5, 6, 7, 8]
        assert errors[5].column == "email"
        assert "columns" in errors[6].error
        assert str(MAX_RECORD_BYTES) in errors[7].error
        assert "not valid CSV" in errors[8].error
        assert outcome.skipped == 0

    def test_skipped_rows_are_counted(self) -> None:
        p = plan(["full_name", "email"], rules=ValidationRules(email_required=False))
        outcome = parse_batch(
            [record(2, b"Ann,"), record(3, b"Bob,bob@example.com")],
            p,
            ValidationRules(email_required=False),
        )
        assert outcome.skipped == 1
        assert [r.line for r in outcome.valid] == [3]


class TestErrorsCsv:
    @pytest.mark.parametrize("trigger", ["=", "+", "-", "@", "\t", "\r", "\n"])
    def test_formula_triggers_are_neutralised(self, trigger: str) -> None:
        assert neutralise(trigger + "1+1") == "'" + trigger + "1+1"

    @pytest.mark.parametrize("value", ["John", "1-2", "a=b", " =x", "'quoted", "", "x@y.z"])
    def test_other_values_are_kept(self, value: str) -> None:
        assert neutralise(value) == value

    def test_none_and_numbers(self) -> None:
        assert neutralise(None) == ""
        assert neutralise(12) == "12"
        assert neutralise(-3) == "'-3"

    def test_rendered_csv_parses_back_with_neutralised_cells(self) -> None:
        rows = [
            (3, "email", '=HYPERLINK("http://evil.example","click")', "bad e-mail"),
            (4, "phone", "-2+3", "phone must contain digits only"),
            (5, None, None, 'Row has 2 columns, "quoted"\nsecond line'),
        ]
        parsed = list(csv.reader(io.StringIO(render_rows(rows), newline="")))
        assert parsed == [
            ["3", "email", '\'=HYPERLINK("http://evil.example","click")', "bad e-mail"],
            ["4", "phone", "'-2+3", "phone must contain digits only"],
            ["5", "", "", 'Row has 2 columns, "quoted"\nsecond line'],
        ]

    @given(
        st.lists(
            st.tuples(
                st.integers(1, 10**6),
                st.text(max_size=20),
                st.text(max_size=20),
                st.text(max_size=20),
            ),
            max_size=30,
        )
    )
    def test_no_parsed_cell_starts_with_a_trigger(
        self, rows: list[tuple[int, str, str, str]]
    ) -> None:
        parsed = list(csv.reader(io.StringIO(render_rows(rows), newline="")))
        assert len(parsed) == len(rows)
        for cells in parsed:
            for cell in cells:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "\n"))

    def test_stream_starts_with_bom_and_header_and_keeps_every_row(self) -> None:
        async def rows() -> AsyncIterator[tuple[object, ...]]:
            for i in range(1203):
                yield (i, "email", f"=x{i}", "bad")

        async def collect() -> bytes:
            return b"".join([part async for part in stream_csv(rows(), batch=500)])

        body = asyncio.run(collect())
        assert body.startswith(b"\xef\xbb\xbfrow,column,value,error\r\n")
        parsed = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
        assert tuple(parsed[0]) == HEADER
        assert len(parsed) == 1204
        assert parsed[-1] == ["1202", "email", "'=x1202", "bad"]


class TestPeriodicSchedules:
    @pytest.mark.parametrize("cron", [jobs_tasks.RETRY_STALLED_CRON, files_tasks.TICK_CRON])
    def test_runs_every_15_seconds_all_day(self, cron: str) -> None:
        # croniter's sixth field is seconds: the retry must run 4 times a minute, every minute,
        # so a job of a dead worker is picked up within a minute at any time of day.
        for start in (datetime(2026, 1, 1, 12, 1, 7), datetime(2026, 1, 1, 12, 14, 59)):
            schedule = croniter.croniter(cron, start)
            times = [schedule.get_next(datetime) for _ in range(9)]
            gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(times)}
            assert gaps == {15.0}
            assert (times[0] - start).total_seconds() <= 15

    def test_stall_timeout_exceeds_heartbeat(self) -> None:
        assert jobs_tasks.STALLED_AFTER_SECONDS >= 3 * jobs_tasks.HEARTBEAT_SECONDS
