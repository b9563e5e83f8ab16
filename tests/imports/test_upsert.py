"""Imports that update existing customers, join columns, name a saved mapping, and report
their speed — run by a real `filestore worker` on SeaweedFS, checked through the API and the
server's database. Also the preview of a large file on the real S3 store."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fixtures.live import Api, LiveServer
from tests.imports.support import get_job, import_csv, query, start_import, tag, upload_csv


@pytest.fixture(scope="module")
def api(import_server: LiveServer) -> Api:
    return import_server.admin()


def customer(api: Api, email: str) -> dict[str, Any]:
    response = api.get("/customers", params={"email": email})
    assert response.status_code == 200, response.text
    [found] = response.json()
    assert isinstance(found, dict)
    return found


def rows_of(job: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """(created, updated, skipped, failed, successful)."""
    return (
        job["created_rows"],
        job["updated_rows"],
        job["skipped_rows"],
        job["failed_rows"],
        job["successful_rows"],
    )


class TestOnDuplicate:
    def test_update_fills_and_replaces_but_never_the_email_or_password(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        old = api.new_customer(
            full_name="Old Name", email=f"old-{t}@example.com", city="Bergen", phone=None
        )
        api.new_user("customer", old["id"])
        [(hash_before,)] = query(
            import_server, "SELECT password_hash FROM users WHERE customer_id = %s", (old["id"],)
        )
        content = (
            "full_name,email,city,phone,password\n"
            f"New Name,OLD-{t}@Example.com,,555 0100,Correct-Horse-Battery-77\n"
            f"Fresh,fresh-{t}@example.com,Oslo,,\n"
            f"Again,fresh-{t}@example.com,Trondheim,,\n"
        ).encode()
        job = import_csv(api, content, rules={"on_duplicate": "update"})
        assert job["status"] == "completed", job
        # The repeated new e-mail is a duplicate in the file, not an update of the new row.
        assert rows_of(job) == (1, 1, 1, 0, 2)
        assert any("password is never changed" in w for w in job["warnings"]), job["warnings"]
        updated = customer(api, f"old-{t}@example.com")
        assert updated["email"] == f"old-{t}@example.com"
        assert updated["full_name"] == "New Name"
        assert updated["city"] == "Bergen"  # an empty cell leaves the field as it is
        assert updated["phone"] == "5550100"
        assert customer(api, f"fresh-{t}@example.com")["city"] == "Oslo"
        [(hash_after,)] = query(
            import_server, "SELECT password_hash FROM users WHERE customer_id = %s", (old["id"],)
        )
        assert hash_after == hash_before
        [(previous,)] = query(
            import_server,
            "SELECT previous FROM import_updates WHERE job_id = %s AND customer_id = %s",
            (job["id"], old["id"]),
        )
        assert previous["full_name"] == "Old Name"
        assert previous["phone"] is None

        # The same file again: nothing left to change, nothing new.
        again = import_csv(api, content, rules={"on_duplicate": "update"})
        assert rows_of(again) == (0, 0, 3, 0, 0)

    def test_an_email_repeated_in_a_later_batch_updates_once(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        api.new_customer(full_name="Before", email=f"r-{t}@example.com")
        filler = "".join(f"F {i},f{i}-{t}@example.com\n" for i in range(5100))
        content = f"full_name,email\nFirst,r-{t}@example.com\n{filler}Second,R-{t}@example.com\n"
        job = import_csv(api, content.encode(), rules={"on_duplicate": "update"}, timeout=120)
        assert rows_of(job) == (5100, 1, 1, 0, 5101)
        assert customer(api, f"r-{t}@example.com")["full_name"] == "First"

    def test_update_if_empty_only_fills_empty_fields(self, api: Api) -> None:
        t = tag()
        api.new_customer(full_name="Kept", email=f"k-{t}@example.com", city="Bergen")
        content = f"full_name,email,city,country\nIgnored,k-{t}@example.com,Oslo,Norway\n"
        job = import_csv(api, content.encode(), rules={"on_duplicate": "update_if_empty"})
        assert rows_of(job) == (0, 1, 0, 0, 1)
        found = customer(api, f"k-{t}@example.com")
        assert (found["full_name"], found["city"], found["country"]) == ("Kept", "Bergen", "Norway")

    def test_skip_is_still_the_default(self, api: Api) -> None:
        t = tag()
        api.new_customer(full_name="Same", email=f"s-{t}@example.com")
        job = import_csv(api, f"full_name,email\nOther,s-{t}@example.com\n".encode())
        assert rows_of(job) == (0, 0, 1, 0, 0)
        assert customer(api, f"s-{t}@example.com")["full_name"] == "Same"


class TestMappingAndTemplates:
    def test_a_saved_template_with_joined_name_columns(self, api: Api) -> None:
        t = tag()
        name = f"crm-{t}"
        mapping = {"First": "full_name", "Last": "full_name", "E-Mail": "email"}
        saved = api.post(
            "/files/csv-import/mappings", json={"name": name, "mapping_config": mapping}
        )
        assert saved.status_code == 201, saved.text
        content = f"Last,First,E-Mail\nLovelace,Ada,ada-{t}@example.com\n".encode()
        file_id = upload_csv(api, content)
        response = api.post(
            "/files/csv-import", json={"file_upload_id": file_id, "mapping_template": name}
        )
        assert response.status_code == 202, response.text
        job = wait(api, response.json()["job_id"])
        assert job["status"] == "completed", job
        # Joined in the file's column order: Last, First.
        assert customer(api, f"ada-{t}@example.com")["full_name"] == "Lovelace Ada"


def wait(api: Api, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (job := get_job(api, job_id))["status"] not in ("completed", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job


class TestProgress:
    def test_speed_and_eta_while_running_and_when_done(self, api: Api) -> None:
        t = tag()
        lines = "".join(f"P {i},p{i}-{t}@example.com\n" for i in range(30_000))
        file_id = upload_csv(api, ("full_name,email\n" + lines).encode())
        response = start_import(api, file_id)
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        seen: list[tuple[float, float]] = []
        deadline = time.monotonic() + 120
        while (job := get_job(api, job_id))["status"] != "completed":
            assert job["status"] in ("pending", "processing"), job
            if job["rows_per_second"] is not None and job["eta_seconds"] is not None:
                seen.append((job["rows_per_second"], job["eta_seconds"]))
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        assert seen, "no speed reported while the import ran"
        assert all(rate > 0 and eta >= 0 for rate, eta in seen), seen
        assert job["rows_per_second"] > 0
        assert job["eta_seconds"] == 0


class TestPreviewOnS3:
    def test_a_large_file_previews_fast_and_writes_nothing(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        row = f"Some Customer,c-{t}@example.com,+1 (555) 123-4567,Oslo\n"
        content = ("full_name,email,phone,city\n" + row * 300_000).encode()  # ~18 MB
        file_id = upload_csv(api, content)
        started = time.monotonic()
        response = api.post("/files/csv-import/preview", json={"file_upload_id": file_id})
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.text
        body = response.json()
        assert [r["verdict"] for r in body["rows"][:2]] == ["new", "duplicate_in_file"]
        assert len(body["rows"]) == 20
        assert elapsed < 1.0
        [(count,)] = query(
            import_server,
            "SELECT count(*) FROM customers WHERE email = %s",
            (f"c-{t}@example.com",),
        )
        assert count == 0


class TestUndo:
    def test_undo_removes_what_it_created_restores_what_it_updated_keeps_what_moved_on(
        self, import_server: LiveServer, api: Api
    ) -> None:
        t = tag()
        old = api.new_customer(full_name="Before", email=f"u-old-{t}@example.com", city="Bergen")
        password = "Correct-Horse-Battery-77x"
        content = (
            "full_name,email,city,password\n"
            f"After,u-old-{t}@example.com,Oslo,\n"
            + "".join(f"New {i},u{i}-{t}@example.com,Oslo,\n" for i in range(4))
            + f"New 4,u4-{t}@example.com,Oslo,{password}\n"
        ).encode()
        job = import_csv(api, content, rules={"on_duplicate": "update"})
        assert rows_of(job) == (5, 1, 0, 0, 6)
        ticketed = customer(api, f"u0-{t}@example.com")
        api.new_ticket(ticketed["id"])
        logged_in = customer(api, f"u4-{t}@example.com")
        login = api.http.post(
            "/auth/login", json={"username": f"u4-{t}@example.com", "password": password}
        )
        assert login.status_code == 200, login.text

        response = api.post(f"/files/jobs/{job['id']}/undo")
        assert response.status_code == 202, response.text
        undo_id = response.json()["job_id"]
        # Asked again while it runs (or once done): never a second undo.
        again = api.post(f"/files/jobs/{job['id']}/undo")
        assert again.status_code in (202, 409), again.text
        if again.status_code == 202:
            assert again.json()["job_id"] == undo_id
        undo = wait(api, undo_id)
        assert undo["status"] == "completed", undo
        assert undo["job_type"] == "import_undo"
        assert (undo["total_rows"], undo["successful_rows"], undo["skipped_rows"]) == (6, 4, 2)
        assert [(e["row"], e["error"]) for e in undo["error_log"]] == [
            (ticketed["id"], "kept: has tickets"),
            (logged_in["id"], "kept: its user has logged in"),
        ]

        restored = customer(api, f"u-old-{t}@example.com")
        assert (restored["id"], restored["full_name"], restored["city"]) == (
            old["id"],
            "Before",
            "Bergen",
        )
        gone = query(
            import_server,
            "SELECT count(*) FROM customers WHERE email LIKE %s",
            (f"u_-{t}@example.com",),
        )
        assert gone == [(2,)]  # only the customers with a ticket or a login are left
        # u4's login (imported with its password) is kept with it; u0 was imported without a
        # password, so it never had one.
        users = query(
            import_server,
            "SELECT count(*) FROM users WHERE email LIKE %s",
            (f"u_-{t}@example.com",),
        )
        assert users == [(1,)]
        assert get_job(api, job["id"])["result"]["undone_by"] == undo_id
        events = query(
            import_server,
            "SELECT action FROM audit_events WHERE details->>'import_job_id' = %s ORDER BY id",
            (job["id"],),
        )
        assert events == [("import.undo_requested",), ("import.undone",)]

        refused = api.post(f"/files/jobs/{job['id']}/undo")
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "already_undone"

    def test_a_failed_import_and_a_dry_run_are_refused_with_the_reason(self, api: Api) -> None:
        failed = import_csv(api, b"nothing,useful\n1,2\n")
        assert failed["status"] == "failed", failed
        response = api.post(f"/files/jobs/{failed['id']}/undo")
        assert (response.status_code, response.json()["code"]) == (409, "import_failed")
        t = tag()
        dry = import_csv(
            api, f"full_name,email\nA,d-{t}@example.com\n".encode(), rules={"dry_run": True}
        )
        response = api.post(f"/files/jobs/{dry['id']}/undo")
        assert (response.status_code, response.json()["code"]) == (409, "nothing_to_undo")
