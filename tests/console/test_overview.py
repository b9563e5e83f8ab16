"""The Overview screen in a real browser: an admin reads the storage, upload, import and health
figures as text (headings, tables, the charts' accessible names); a customer user has no way in."""

from __future__ import annotations

import re
import uuid
from typing import Any

from playwright.sync_api import expect

from tests.console.conftest import Console


def total(body: dict[str, Any], key: str, field: str) -> int:
    return sum(int(day[field]) for day in body[key])


def test_admin_reads_the_overview(console: Console) -> None:
    admin = console.admin()
    customer = admin.new_customer(full_name=f"Overview {uuid.uuid4().hex[:6]}")
    for name, size in (("big.csv", 200_000), ("small.csv", 4_000)):
        content = b"a\n" + b"1\n" * ((size - 2) // 2)
        response = admin.upload(content, name, customer_id=customer["id"])
        assert response.status_code == 201, response.text

    bad: list[str] = []
    console.page.on(
        "response", lambda r: bad.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    console.sign_in_as_admin()
    page = console.page
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Overview").click()
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    for heading in (
        "Uploads per day",
        "Storage per bucket",
        "Customers with the most bytes",
        "Imports per day",
        "Health",
    ):
        expect(page.get_by_role("heading", name=heading, level=2)).to_be_visible()

    body = admin.get("/stats/overview", params={"days": 30}).json()
    done = total(body, "uploads", "completed")
    rejected = total(body, "uploads", "rejected")
    # The chart's text alternative carries the same numbers as the API.
    chart = page.get_by_role("img", name=re.compile(r"^Uploads per day:"))
    expect(chart).to_have_attribute(
        "aria-label", re.compile(rf"{done:,} accepted and {rejected:,} rejected in 30 days")
    )
    expect(page.locator("canvas").first).to_be_visible()  # uPlot drew under the strict CSP

    # The customer's 204,000 bytes (199 KB) in two files, by name, among the top customers.
    top = page.get_by_role("list", name="Bytes per customer")
    expect(top.get_by_role("listitem").filter(has_text=customer["full_name"])).to_have_text(
        re.compile(r"199 KB · 2 files")
    )
    # Today's row of the uploads table counts at least these two.
    table = page.get_by_role("table", name="Uploads per day")
    today = body["uploads"][-1]
    row = table.get_by_role("row").last
    expect(row.get_by_role("cell").first).to_have_text(f"{today['completed']:,}")

    buckets = page.get_by_role("list", name="Bytes per bucket")
    for bucket in body["storage"]:
        expect(buckets.get_by_role("listitem").filter(has_text=bucket["bucket"])).to_be_visible()
    health = page.get_by_role("region", name="Health")
    expect(health.get_by_text("Database")).to_be_visible()
    expect(health.get_by_text("Workers")).to_be_visible()
    expect(health.get_by_text("Virus scanner (clamd)")).to_be_visible()
    # Signing in meets a 401 and a refused refresh before the session exists; nothing else fails.
    assert [b for b in bad if not b.endswith(("/auth/me", "/console/session/refresh"))] == []
    assert [e for e in console.watched.errors if not e.startswith("Failed to load")] == []


def test_customer_user_has_no_overview(console: Console) -> None:
    admin = console.admin()
    customer = admin.new_customer(full_name=f"No overview {uuid.uuid4().hex[:6]}")
    user, password = admin.new_user("customer", customer["id"])
    console.sign_in(user["username"], password)
    page = console.page
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(["My files", "Tickets"])
    page.goto(f"{console.url}#/overview")
    expect(page.get_by_role("heading", name=customer["full_name"], level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_have_count(0)
