"""Import jobs through the app (no worker runs in the fast tier): cancelling, dry-run flag."""

from __future__ import annotations

from typing import Any

from tests.fixtures.app import AsyncApi

CSV = b"full_name,email\nAda Lovelace,ada@example.com\n"


async def pending_import(api: AsyncApi, **rules: Any) -> dict[str, Any]:
    uploaded = await api.upload(CSV, "customers.csv", file_type="csv")
    assert uploaded.status_code == 201, uploaded.text
    started = await api.post(
        "/files/csv-import",
        json={
            "file_upload_id": uploaded.json()["id"],
            "import_type": "customers",
            "validation_rules": rules,
        },
    )
    assert started.status_code in {201, 202}, started.text
    job: dict[str, Any] = started.json()
    return job


async def test_a_pending_job_is_cancelled_at_once(admin_client: AsyncApi) -> None:
    job = await pending_import(admin_client)
    assert job["status"] == "pending"

    cancelled = await admin_client.post(f"/files/jobs/{job['job_id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    again = await admin_client.get(f"/files/jobs/{job['job_id']}")
    assert again.json()["status"] == "cancelled"


async def test_a_finished_job_cannot_be_cancelled_again(admin_client: AsyncApi) -> None:
    job = await pending_import(admin_client)
    assert (await admin_client.post(f"/files/jobs/{job['job_id']}/cancel")).status_code == 200

    second = await admin_client.post(f"/files/jobs/{job['job_id']}/cancel")
    assert second.status_code == 409
    assert second.json()["code"] == "job_finished"


async def test_a_customer_cannot_see_or_cancel_staff_jobs(admin_client: AsyncApi) -> None:
    job = await pending_import(admin_client)
    customer_id = (await admin_client.new_customer())["id"]
    customer = await admin_client.user_api("customer", customer_id)

    assert (await customer.post(f"/files/jobs/{job['job_id']}/cancel")).status_code in {403, 404}
    status = (await admin_client.get(f"/files/jobs/{job['job_id']}")).json()["status"]
    assert status == "pending"


async def test_a_job_says_whether_it_is_a_dry_run(admin_client: AsyncApi) -> None:
    dry = await pending_import(admin_client, dry_run=True)
    real = await pending_import(admin_client)

    assert (await admin_client.get(f"/files/jobs/{dry['job_id']}")).json()["dry_run"] is True
    assert (await admin_client.get(f"/files/jobs/{real['job_id']}")).json()["dry_run"] is False
    listed = await admin_client.get("/files/jobs", params={"job_type": "csv_import"})
    flags = {job["id"]: job["dry_run"] for job in listed.json()}
    assert flags[dry["job_id"]] is True
    assert flags[real["job_id"]] is False
