"""`POST /files/csv-import/preview` through the app (fast tier: local store, real database):
what a user sees before importing, and that nothing is written."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from filestore.imports import preview as imports_preview
from filestore.imports.records import ImportSource
from filestore.imports.rows import ValidationRules
from filestore.imports.xlsx_sheet import read_shared_strings
from tests.auth.support import assert_error
from tests.fixtures.app import AsyncApi
from tests.imports.xlsx_files import inline_row, shared_row, sheet_xml, workbook


async def preview(
    api: AsyncApi,
    content: bytes,
    filename: str = "customers.csv",
    *,
    file_type: str = "csv",
    mapping: dict[str, str] | None = None,
    rules: dict[str, Any] | None = None,
) -> httpx.Response:
    uploaded = await api.upload(
        content, filename, content_type="application/octet-stream", file_type=file_type
    )
    assert uploaded.status_code == 201, uploaded.text
    body: dict[str, Any] = {"file_upload_id": uploaded.json()["id"]}
    if mapping is not None:
        body["mapping_config"] = mapping
    if rules is not None:
        body["validation_rules"] = rules
    return await api.post("/files/csv-import/preview", json=body)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def columns(body: dict[str, Any]) -> dict[str, tuple[str | None, str]]:
    return {c["column"]: (c["field"], c["match"]) for c in body["columns"]}


def email() -> str:
    return f"p-{secrets.token_hex(5)}@example.com"


class TestFileFormat:
    async def test_excel_semicolon_cp1252_is_read_and_reported(
        self, admin_client: AsyncApi
    ) -> None:
        content = f"Full Name;E-mail Address;ZIP code\nZoë Ñandú;{email()};1010\n"
        body = ok(await preview(admin_client, content.encode("cp1252")))
        assert body["encoding"] == "windows-1252"
        assert body["delimiter"] == ";"
        assert body["quote_char"] == '"'
        assert body["header_row"] == 1
        assert body["rows"][0]["values"]["full_name"] == "Zoë Ñandú"

    async def test_utf16_with_bom(self, admin_client: AsyncApi) -> None:
        content = f"full_name\temail\nAda\t{email()}\n".encode("utf-16")
        body = ok(await preview(admin_client, content))
        assert body["encoding"].startswith("utf-16")
        assert body["delimiter"] == "\t"
        assert body["rows"][0]["verdict"] == "new"

    async def test_xlsx_first_rows(self, admin_client: AsyncApi) -> None:
        address = email()
        book = workbook(
            [
                (
                    "Customers",
                    sheet_xml([inline_row(1, ["Name", "Email"]), inline_row(2, ["Ada", address])]),
                )
            ]
        )
        body = ok(await preview(admin_client, book, "c.xlsx", file_type="xlsx"))
        assert body["encoding"] is None
        assert body["file_format"]["kind"] == "xlsx"
        assert body["file_format"]["sheet"] == "Customers"
        assert body["rows"] == [
            {
                "row": 2,
                "verdict": "new",
                "values": {"full_name": "Ada", "email": address},
                "errors": [],
                "changes": {},
                "warnings": [],
                "why": None,
                "repeated_below": None,
            }
        ]

    async def test_undecidable_encoding_says_so_naming_the_choices(
        self, admin_client: AsyncApi
    ) -> None:
        # Bytes valid in no encoding the import reads without being told.
        content = b"full_name,email\n" + bytes(range(0x80, 0x100)) * 4 + b",x@example.com\n"
        response = await preview(admin_client, content)
        if response.status_code == 200:  # decided as a single-byte encoding: then it says which
            assert response.json()["encoding"]
            return
        body = assert_error(response, 422, "unreadable_file")
        assert "encoding" in body["detail"]

    async def test_a_non_csv_file_is_refused(self, admin_client: AsyncApi) -> None:
        response = await preview(admin_client, b"%PDF-1.4", "a.pdf", file_type="pdf")
        assert_error(response, 422, "not_csv")


class TestMapping:
    async def test_each_column_says_how_sure_and_why(self, admin_client: AsyncApi) -> None:
        content = f"Customer Name,E-mail Address,Mobile,Street 1,Emial,Notes\nA,{email()},1,2,3,4\n"
        body = ok(await preview(admin_client, content.encode()))
        assert columns(body) == {
            "Customer Name": ("full_name", "alias"),
            "E-mail Address": ("email", "alias"),
            "Mobile": ("phone", "alias"),
            "Street 1": ("address", "alias"),
            "Emial": ("email", "fuzzy"),
            "Notes": (None, "unmapped"),
        }
        why = {c["column"]: c["why"] for c in body["columns"]}
        assert "not imported unless mapping_config" in why["Emial"]
        assert body["missing_required"] == []
        # The fuzzy guess is not used: the import would not read it.
        assert "Emial" not in body["mapping"]

    async def test_missing_required_fields_are_listed_not_refused(
        self, admin_client: AsyncApi
    ) -> None:
        body = ok(await preview(admin_client, b"Notes,Phone\nx,1\n"))
        assert body["missing_required"] == ["full_name", "email"]
        assert body["rows"][0]["verdict"] == "invalid"

    async def test_first_and_last_name_join_into_full_name(self, admin_client: AsyncApi) -> None:
        content = f"First name,Last name,email\nAda,Lovelace,{email()}\n".encode()
        mapping = {"First name": "full_name", "Last name": "full_name"}
        body = ok(await preview(admin_client, content, mapping=mapping))
        assert body["rows"][0]["values"]["full_name"] == "Ada Lovelace"
        assert body["mapping"] == {
            "First name": "full_name",
            "Last name": "full_name",
            "email": "email",
        }
        assert columns(body)["Last name"] == ("full_name", "mapping")

    async def test_a_column_mapped_to_nothing_is_not_imported(self, admin_client: AsyncApi) -> None:
        # The console's "not imported" choice: even a header naming a field stays out.
        content = f"full_name,email,city\nAda,{email()},Bonn\n".encode()
        body = ok(await preview(admin_client, content, mapping={"city": ""}))
        assert columns(body)["city"] == (None, "unmapped")
        assert "city" not in body["mapping"]
        assert body["rows"][0]["values"].get("city") is None


class TestVerdicts:
    async def test_every_verdict(self, admin_client: AsyncApi) -> None:
        stored = email()
        await admin_client.new_customer(email=stored, full_name="Stored", city=None)
        fresh = email()
        content = (
            "full_name,email,city\n"
            f"New,{fresh},Oslo\n"
            f"Again,{fresh.upper()},Oslo\n"
            f"Known,{stored},Bergen\n"
            f",not-an-email,\n"
        ).encode()
        body = ok(await preview(admin_client, content))
        verdicts = [(r["row"], r["verdict"]) for r in body["rows"]]
        assert verdicts == [
            (2, "new"),
            (3, "duplicate_in_file"),
            (4, "duplicate_existing"),
            (5, "invalid"),
        ]
        invalid = body["rows"][3]["errors"]
        assert {e["error"] for e in invalid} == {
            "full_name is required",
            "email is not a valid e-mail address",
        }
        updated = ok(await preview(admin_client, content, rules={"on_duplicate": "update"}))
        known = updated["rows"][2]
        assert known["verdict"] == "update"
        assert known["changes"] == {
            "full_name": {"from": "Stored", "to": "Known"},
            "city": {"from": None, "to": "Bergen"},
        }
        if_empty = ok(
            await preview(admin_client, content, rules={"on_duplicate": "update_if_empty"})
        )
        assert if_empty["rows"][2]["changes"] == {"city": {"from": None, "to": "Bergen"}}

    async def test_only_twenty_rows_and_nothing_written(self, admin_client: AsyncApi) -> None:
        lines = [f"Row {i},{email()}" for i in range(50)]
        content = ("full_name,email\n" + "\n".join(lines) + "\n").encode()
        body = ok(await preview(admin_client, content))
        assert [r["row"] for r in body["rows"]] == list(range(2, 22))
        address = lines[0].split(",")[1]
        listed = await admin_client.get("/customers", params={"search": address})
        assert listed.status_code == 200
        assert address not in listed.text

    async def test_passwords_are_never_shown(self, admin_client: AsyncApi) -> None:
        content = f"full_name,email,password\nA,{email()},Secret-Horse-Battery-9\n".encode()
        body = ok(await preview(admin_client, content))
        assert body["rows"][0]["values"]["password"] == "***"
        assert "Secret-Horse" not in str(body)


class TestAccess:
    @pytest.mark.parametrize("role", ["customer"])
    async def test_customers_cannot_preview(self, admin_client: AsyncApi, role: str) -> None:
        customer = await admin_client.new_customer()
        api = await admin_client.user_api(role, customer["id"])
        response = await api.post("/files/csv-import/preview", json={"file_upload_id": 1})
        assert_error(response, 403)

    async def test_unknown_file_404(self, admin_client: AsyncApi) -> None:
        response = await admin_client.post(
            "/files/csv-import/preview", json={"file_upload_id": 987654321}
        )
        assert_error(response, 404, "file_not_found")


class TestReadsOnlyWhatItNeeds:
    async def test_a_million_row_file_is_previewed_from_bounded_reads(self) -> None:
        """The preview's cost does not depend on the file's length: on a 1M-row CSV it reads
        a few ranged blocks from its start (the source counts them)."""
        row = b"Some Customer Name,customer-000000@example.com,+1 (555) 123-4567,Oslo\n"
        data = b"full_name,email,phone,city\n" + row * 1_000_000
        reads: list[tuple[int, int]] = []

        async def read_range(start: int, end: int) -> bytes:
            reads.append((start, end))
            return data[start:end]

        async def never(offset: int) -> AsyncIterator[bytes]:
            raise AssertionError("the preview must not stream the whole file")
            yield b""

        async def lookup(emails: list[str]) -> dict[str, dict[str, str | None]]:
            return {}

        source = ImportSource(size=len(data), open=never, read_range=read_range)
        body = await imports_preview.preview(
            source, mapping={}, rules=ValidationRules(), lookup=lookup
        )
        assert len(body["rows"]) == 20
        assert body["rows"][1]["verdict"] == "duplicate_in_file"
        # The start only: the prefix, then the bounded duplicates scan in 1 MiB blocks.
        assert len(reads) <= 3, reads
        assert sum(end - start for start, end in reads) <= imports_preview.DUPLICATE_SCAN_BYTES
        scanned = imports_preview.PREVIEW_ROWS + imports_preview.DUPLICATE_SCAN_ROWS
        dupes = body["duplicates_in_file"]
        assert (dupes["rows_scanned"], dupes["duplicate_rows"], dupes["complete"]) == (
            scanned,
            scanned - 1,
            False,
        )
        assert f"first {scanned} data rows" in dupes["note"]
        # Its speed is bench/import_preview.py's figure; here, the bounded reads are the proof.

    async def test_a_duplicate_below_the_shown_rows_is_reported(self) -> None:
        """The blind spot of a 20-row preview: row 3's e-mail again on row 5,000."""
        lines = [f"Name {i},c{i}@example.com\n" for i in range(6000)]
        # Line 5000 (the header is line 1); quoted, so it is parsed, not split.
        lines[4998] = '"Again, quoted",C2@Example.com\n'
        lines[5500] = "Twice,c100@example.com\n"  # line 5502 repeats line 102: counted too
        data = ("full_name,email\n" + "".join(lines)).encode()

        async def read_range(start: int, end: int) -> bytes:
            return data[start:end]

        async def never(offset: int) -> AsyncIterator[bytes]:
            raise AssertionError("the preview must not stream the whole file")
            yield b""

        async def lookup(emails: list[str]) -> dict[str, dict[str, str | None]]:
            return {}

        source = ImportSource(size=len(data), open=never, read_range=read_range)
        body = await imports_preview.preview(
            source, mapping={}, rules=ValidationRules(), lookup=lookup
        )
        shown = {row["row"]: row for row in body["rows"]}
        assert shown[4]["verdict"] == "new"
        assert shown[4]["repeated_below"] == 5000
        assert shown[5].get("repeated_below") is None
        dupes = body["duplicates_in_file"]
        assert (dupes["rows_scanned"], dupes["duplicate_rows"], dupes["complete"]) == (
            6000,
            2,
            True,
        )
        assert dupes["examples"] == [
            {"row": 5000, "first_row": 4, "email": "c2@example.com"},
            {"row": 5502, "first_row": 102, "email": "c100@example.com"},
        ]


class TestMappingTemplates:
    async def test_save_list_and_name_one_in_a_preview(self, admin_client: AsyncApi) -> None:
        name = f"Billing export {secrets.token_hex(3)}"
        mapping = {"Vorname": "full_name", "Nachname": "full_name", "Mail": "email"}
        created = await admin_client.post(
            "/files/csv-import/mappings", json={"name": name, "mapping_config": mapping}
        )
        assert created.status_code == 201, created.text
        assert created.json()["mapping_config"] == mapping
        again = await admin_client.post(
            "/files/csv-import/mappings", json={"name": name, "mapping_config": {}}
        )
        assert_error(again, 409, "mapping_template_exists")
        listed = await admin_client.get("/files/csv-import/mappings")
        assert listed.status_code == 200
        assert {t["name"]: t["mapping_config"] for t in listed.json()}[name] == mapping

        content = f"Vorname,Nachname,Mail\nAda,Lovelace,{email()}\n".encode()
        uploaded = await admin_client.upload(content, "export.csv", file_type="csv")
        body = ok(
            await admin_client.post(
                "/files/csv-import/preview",
                json={"file_upload_id": uploaded.json()["id"], "mapping_template": name},
            )
        )
        assert body["rows"][0]["values"]["full_name"] == "Ada Lovelace"
        assert body["missing_required"] == []

    async def test_an_unknown_template_is_404_and_bad_targets_422(
        self, admin_client: AsyncApi
    ) -> None:
        uploaded = await admin_client.upload(b"full_name,email\n", "x.csv", file_type="csv")
        body = {"file_upload_id": uploaded.json()["id"], "mapping_template": "nope-nothing"}
        for path in ("/files/csv-import/preview", "/files/csv-import"):
            assert_error(
                await admin_client.post(path, json=body), 404, "mapping_template_not_found"
            )
        bad = await admin_client.post(
            "/files/csv-import/mappings", json={"name": "bad", "mapping_config": {"a": "nick"}}
        )
        assert_error(bad, 422)

    async def test_customers_cannot_see_templates(self, admin_client: AsyncApi) -> None:
        customer = await admin_client.new_customer()
        api = await admin_client.user_api("customer", customer["id"])
        assert_error(await api.get("/files/csv-import/mappings"), 403)


class TestUndoRefusals:
    async def test_a_pending_import_cannot_be_undone_and_unknown_jobs_are_404(
        self, admin_client: AsyncApi
    ) -> None:
        uploaded = await admin_client.upload(b"full_name,email\n", "x.csv", file_type="csv")
        started = await admin_client.post(
            "/files/csv-import", json={"file_upload_id": uploaded.json()["id"]}
        )
        assert started.status_code == 202, started.text
        job_id = started.json()["job_id"]
        body = assert_error(
            await admin_client.post(f"/files/jobs/{job_id}/undo"), 409, "import_running"
        )
        assert "cancel" in body["detail"]
        unknown = await admin_client.post("/files/jobs/00000000-0000-4000-8000-000000000000/undo")
        assert_error(unknown, 404, "job_not_found")


class TestWorkbookPreviewReadsTheStartOfItsStrings:
    def test_the_string_table_is_read_only_as_far_as_asked(self) -> None:
        pulled = 0

        def chunks() -> Iterator[bytes]:
            nonlocal pulled
            yield b'<sst xmlns="x">'
            for block in range(1000):
                pulled += 1
                yield b"".join(b"<si><t>s%d</t></si>" % (block * 100 + i) for i in range(100))
            yield b"</sst>"

        strings = read_shared_strings(chunks(), 1_000)
        assert strings.get(999) == "s999"
        assert pulled <= 12

    async def test_a_workbook_with_many_strings_previews_its_first_rows(
        self, admin_client: AsyncApi
    ) -> None:
        rows = 30_000
        strings = ["Name", "Email"]
        for i in range(rows):
            strings += [f"Person {i}", f"x{i}-{secrets.token_hex(2)}@example.com"]
        sheet = sheet_xml([shared_row(r + 1, [2 * r, 2 * r + 1]) for r in range(rows + 1)])
        book = workbook([("S", sheet)], strings=strings)
        body = ok(await preview(admin_client, book, "big.xlsx", file_type="xlsx"))
        assert [r["values"]["full_name"] for r in body["rows"][:2]] == ["Person 0", "Person 1"]
        assert len(body["rows"]) == 20
        assert {r["verdict"] for r in body["rows"]} == {"new"}
