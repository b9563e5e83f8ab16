"""The one-statement reads on a live production server, where they run on a pooled connection
in autocommit without an ORM session (the fast tier runs the same statements in a session's
savepoint): a download's audit event is written durably and logged once per download, from
the small-object cache too; a logout refuses metadata, listing, download and `/auth/me` at once;
a HEAD writes no event."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.fixtures.live import Api, LiveServer

CSV = b"name,email\nAda,ada@example.com\n"


def download_events(admin: Api, file_id: int) -> list[dict[str, Any]]:
    params = {"file_id": file_id, "action": "file.downloaded"}
    response = admin.get("/audit-events", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def logged_downloads(server: LiveServer, file_id: int) -> int:
    lines = [line for line in server.log().splitlines() if "audit.file.downloaded" in line]
    return sum(1 for line in lines if json.loads(line).get("file_id") == file_id)


def test_each_download_is_one_event_and_one_line(server: LiveServer, admin: Api) -> None:
    customer_id = admin.new_customer()["id"]
    uploaded = admin.upload(CSV, "a.csv", customer_id=customer_id)
    assert uploaded.status_code == 201, uploaded.text
    file_id = uploaded.json()["id"]
    for _ in range(3):  # the second and third from the cache
        response = admin.get(f"/files/download/{file_id}")
        assert (response.status_code, response.content) == (200, CSV)
    head = httpx.head(
        f"{server.base_url}/files/download/{file_id}",
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    assert head.status_code == 200
    events = download_events(admin, file_id)
    assert len(events) == 3
    assert {(e["customer_id"], e["details"]["filename"]) for e in events} == {
        (customer_id, "a.csv")
    }
    deadline = time.monotonic() + 5  # the log file is written by another process
    while logged_downloads(server, file_id) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert logged_downloads(server, file_id) == 3


def test_logout_refuses_every_read_at_once(server: LiveServer, admin: Api) -> None:
    customer_id = admin.new_customer()["id"]
    file_id = admin.upload(CSV, "b.csv", customer_id=customer_id).json()["id"]
    user, password = admin.new_user("staff")
    login = httpx.post(
        f"{server.base_url}/auth/login",
        json={"username": user["username"], "password": password},
    )
    assert login.status_code == 200, login.text
    tokens = login.json()
    reader = Api(server.base_url, tokens["access_token"])
    paths = [
        f"/files/{file_id}",
        f"/files/customer/{customer_id}",
        f"/files/download/{file_id}",
        "/auth/me",
    ]
    for path in paths:
        assert reader.get(path).status_code == 200, path
    out = httpx.post(
        f"{server.base_url}/auth/logout", json={"refresh_token": tokens["refresh_token"]}
    )
    assert out.status_code == 204, out.text
    for path in paths:
        refused = reader.get(path)
        assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token"), path
    assert len(download_events(admin, file_id)) == 1
