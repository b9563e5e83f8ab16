"""Imports of files as people bring them, end to end: uploaded through the API to SeaweedFS,
run by a real `filestore worker`. European Excel's Windows-1252 semicolon CSV, Excel's UTF-16
"Unicode Text", .xlsx workbooks, and the files that must fail with a reason and write nothing.
"""

from __future__ import annotations

import io
import random
from typing import Any

import openpyxl
import pytest

from tests.fixtures.live import Api, LiveServer
from tests.imports.support import query, start_import, tag, wait_job
from tests.imports.xlsx_files import ole2, shared_row, sheet_xml, workbook

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def api(import_server: LiveServer) -> Api:
    return import_server.admin()


def run_import(
    api: Api,
    content: bytes,
    filename: str,
    *,
    rules: dict[str, Any] | None = None,
    mapping: dict[str, str] | None = None,
) -> dict[str, Any]:
    file_type = filename.rpartition(".")[2]
    uploaded = api.upload(content, filename, content_type="text/csv", file_type=file_type)
    assert uploaded.status_code == 201, uploaded.text
    response = start_import(api, int(uploaded.json()["id"]), mapping=mapping, rules=rules)
    assert response.status_code == 202, response.text
    return wait_job(api, response.json()["job_id"], timeout=90)


def stored(server: LiveServer, t: str) -> dict[str, tuple[Any, ...]]:
    """e-mail → (full_name, phone, postal_code) of this test's customers."""
    rows = query(
        server,
        "SELECT email, full_name, phone, postal_code FROM customers WHERE email ILIKE %s",
        (f"%{t}%",),
    )
    return {row[0]: tuple(row[1:]) for row in rows}


class TestEncodings:
    def test_european_excel_windows_1252_semicolons(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        text = (
            "Kundenexport Dezember\r\n"
            "Full name;E-mail;Phone;ZIP;Notes\r\n"
            f"Zoë Müller;zoe-{t}@example.com;+49 30 1234567;10115;„Grüße“ \u2013 5 €\r\n"
            f'"Dupont; François";fr-{t}@example.com;01 23 45 67 89;75001;déjà vu\r\n'
        )
        job = run_import(api, text.encode("cp1252"), "export.csv")
        assert job["status"] == "completed", job
        assert (job["total_rows"], job["successful_rows"], job["failed_rows"]) == (2, 2, 0)
        source = job["result"]["file_format"]
        assert (source["encoding"], source["delimiter"], source["header_row"]) == (
            "windows-1252",
            ";",
            1,
        )
        assert "not UTF-8" in source["encoding_reason"]
        assert stored(import_server, t) == {
            f"zoe-{t}@example.com": ("Zoë Müller", "49301234567", "10115"),
            f"fr-{t}@example.com": ("Dupont; François", "0123456789", "75001"),
        }

    def test_excel_unicode_text_utf16_tabs(self, import_server: LiveServer, api: Api) -> None:
        t = tag()
        text = f"full_name\temail\n李小龍\tlee-{t}@example.com\nŁucja Ćwik\tlc-{t}@example.com\n"
        job = run_import(api, "\ufeff".encode("utf-16-le") + text.encode("utf-16-le"), "u.csv")
        assert job["status"] == "completed", job
        assert (
            job["result"]["file_format"]["encoding"],
            job["result"]["file_format"]["delimiter"],
        ) == (
            "utf-16-le",
            "\t",
        )
        assert {v[0] for v in stored(import_server, t).values()} == {"李小龍", "Łucja Ćwik"}

    def test_undecidable_fails_naming_the_choices_then_the_override_imports(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        text = "full_name;email\n" + "".join(
            f"Иван Петров {i};iv{i}-{t}@example.com\n" for i in range(3)
        )
        failed = run_import(api, text.encode("cp1251"), "ru.csv")
        assert failed["status"] == "failed", failed
        assert "validation_rules.encoding" in failed["message"]
        assert "windows-1251" in failed["message"]
        assert stored(import_server, t) == {}  # never mojibake in the database
        job = run_import(api, text.encode("cp1251"), "ru.csv", rules={"encoding": "windows-1251"})
        assert job["status"] == "completed", job
        assert {v[0] for v in stored(import_server, t).values()} == {
            f"Иван Петров {i}" for i in range(3)
        }

    def test_bad_byte_after_the_first_64k_fails_before_writing(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        rows = "".join(f"Person {i},p{i}-{t}@example.com\n" for i in range(3000))
        content = b"full_name,email\n" + rows.encode() + b"Caf\xe9,cafe@example.com\n"
        job = run_import(api, content, "late.csv")
        assert job["status"] == "failed", job
        bad = content.index(b"\xe9")
        assert f"byte 0xe9 at offset {bad}" in job["message"]
        assert "windows-1252" in job["message"]
        assert stored(import_server, t) == {}


class TestWorkbooks:
    def test_xlsx_first_sheet_with_numbers_and_e164(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = "Kunden"
        sheet.append(["Full name", "E-mail", "Mobile", "ZIP"])
        sheet.append(["Zoë Müller", f"zoe-{t}@example.com", "(555) 123-4567", 2134])
        sheet.append(["Bo", f"bo-{t}@example.com", 15551234567, "02134"])
        sheet.append(["No Phone", f"np-{t}@example.com", "555 1234", None])
        book.create_sheet("Notes").append(["ignored"])
        out = io.BytesIO()
        book.save(out)
        job = run_import(
            api,
            out.getvalue(),
            "kunden.xlsx",
            rules={"phone_format": "e164", "default_region": "US"},
        )
        assert job["status"] == "completed", job
        assert (job["total_rows"], job["successful_rows"], job["failed_rows"]) == (3, 2, 1)
        assert job["result"]["file_format"]["kind"] == "xlsx"
        assert job["result"]["file_format"]["sheet"] == "Kunden"
        assert job["error_log"][0]["row"] == 4
        assert "local number" in job["error_log"][0]["error"]
        assert stored(import_server, t) == {
            f"zoe-{t}@example.com": ("Zoë Müller", "+15551234567", "2134"),
            f"bo-{t}@example.com": ("Bo", "+15551234567", "02134"),
        }

    def test_named_sheet(self, import_server: LiveServer, api: Api) -> None:
        t = tag()
        data = workbook(
            [
                (
                    "Readme",
                    sheet_xml(['<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>']),
                ),
                (
                    "Customers",
                    sheet_xml([shared_row(1, [0, 1]), shared_row(2, [2, 3])]),
                ),
            ],
            strings=["name", "email", "Ann", f"ann-{t}@example.com"],
        )
        job = run_import(api, data, "two.xlsx", rules={"sheet": "customers"})
        assert job["status"] == "completed", job
        assert stored(import_server, t) == {f"ann-{t}@example.com": ("Ann", None, None)}
        missing = run_import(api, data, "two.xlsx", rules={"sheet": "Nope"})
        assert missing["status"] == "failed"
        assert "'Readme', 'Customers'" in missing["message"]

    def test_workbook_without_sheets_fails_with_the_reason(self, api: Api) -> None:
        job = run_import(api, workbook([]), "book.xlsx")
        assert job["status"] == "failed", job
        assert job["message"] == "The workbook has no worksheets"

    def test_password_protected_workbook_refused_at_upload_saying_why(self, api: Api) -> None:
        encrypted = ole2("EncryptionInfo", "EncryptedPackage")
        response = api.upload(encrypted, "book.xlsx", content_type=XLSX, file_type="xlsx")
        assert response.status_code == 415, response.text
        assert "password-protected" in response.json()["detail"]

    def test_zip_bomb_fails_at_the_stated_limit(self, api: Api) -> None:
        padding = " " * (300 * 1024 * 1024)
        bomb = sheet_xml([]).replace("<sheetData>", "<sheetData>" + padding)
        job = run_import(api, workbook([("S", bomb)]), "bomb.xlsx")
        assert job["status"] == "failed", job
        assert "limit is 200 to 1" in job["message"]

    def test_ten_megabyte_cell_fails_its_row_only(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        big = random.Random(2).randbytes(5_000_000).hex()
        data = workbook(
            [
                (
                    "S",
                    sheet_xml(
                        [shared_row(1, [0, 1]), shared_row(2, [2, 3]), shared_row(3, [4, 5])]
                    ),
                )
            ],
            strings=[
                "full_name",
                "email",
                big,
                f"big-{t}@example.com",
                "Ok",
                f"ok-{t}@example.com",
            ],
        )
        job = run_import(api, data, "big.xlsx")
        assert job["status"] == "completed", job
        assert (job["successful_rows"], job["failed_rows"]) == (1, 1)
        assert "Cell A2 has more than 32767 characters" in job["error_log"][0]["error"]
        assert stored(import_server, t) == {f"ok-{t}@example.com": ("Ok", None, None)}
