"""Screenshots of the console's main screens at 1280x800 and 390x844 into `docs/console/`
(referenced from the README). Each screen is also checked for what a person would see."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import Postgres, ServerFactory
from tests.console.conftest import DESKTOP, PHONE, open_console
from tests.console.test_console import choose_files, pdf_bytes, png_bytes, upload_via_api, write
from tests.fixtures.live import LiveServer, production_env
from tests.fixtures.servers import SeaweedFS, s3_env


@pytest.fixture(scope="module")
def showcase(
    postgres: Postgres, seaweed: SeaweedFS, start_filestore: ServerFactory
) -> tuple[LiveServer, int, str]:
    """A server of its own (so other tests' records stay out of the pictures) holding one
    customer with files and tickets, and a few others for the search; returns the ticket id
    and the import's job id."""
    env = production_env(postgres.create_database("filestore_showcase"))
    env["FILESTORE_IN_PROCESS_WORKER"] = "true"
    env.update(s3_env(seaweed))
    server = start_filestore(env)
    admin = server.admin()
    customer = admin.new_customer(
        full_name="Maria Schmidt",
        phone="+49 30 1234567",
        address="Hauptstraße 12",
        postal_code="10115",
        city="Berlin",
        country="Germany",
    )
    for name in ("Jonas Weber", "Mariam Haddad", "Marek Nowak"):
        admin.new_customer(full_name=name)
    ticket = admin.new_ticket(customer["id"], subject="Fibre modem offline since Monday")
    admin.new_ticket(customer["id"], subject="Move contract to new address")
    upload_via_api(
        admin,
        customer["id"],
        "modem-front.png",
        png_bytes(320, 200),
        file_type="photo",
        ticket_id=ticket["id"],
    )
    upload_via_api(admin, customer["id"], "contract-2026.pdf", pdf_bytes(), file_type="contract")
    imported = upload_via_api(
        admin,
        None,
        "new-customers.csv",
        b"full_name,email\nLena Vogel,lena@example.com\nTom Berg,tom@example.com\nBad,nope\n",
        file_type="csv",
    )
    started = admin.post("/files/csv-import", json={"file_upload_id": imported})
    assert started.status_code == 202, started.text
    job_id = str(started.json()["job_id"])
    upload_via_api(
        admin, customer["id"], "line-test.csv", b"time,dbm\n1,-20\n", file_type="document"
    )
    return server, int(ticket["id"]), job_id


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_main_screens(
    browser: Browser,
    showcase: tuple[LiveServer, int, str],
    viewport: dict[str, int],
    tmp_path: Path,
) -> None:
    console_server, ticket_id, job_id = showcase
    for console in open_console(browser, console_server, viewport):
        page = console.page
        page.goto(console.url)
        expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
        console.screenshot("sign-in")

        console.sign_in_as_admin()
        page.get_by_label("Search customers").fill("mar")
        found = page.get_by_role("list", name="Customers found").get_by_role("link")
        expect(found).to_have_count(3)
        expect(found.first).to_contain_text("Marek Nowak")
        console.screenshot("customers")

        page.get_by_role("link", name=re.compile("Maria Schmidt")).first.click()
        expect(page.get_by_role("rowheader", name=re.compile("line-test.csv"))).to_be_visible()
        console.screenshot("customer")

        page.get_by_role("button", name="Preview modem-front.png").click()
        expect(page.get_by_role("img", name="Preview of modem-front.png")).to_be_visible()
        console.screenshot("preview")
        page.keyboard.press("Escape")

        paths = [write(tmp_path, n, png_bytes(40, 40)) for n in ("cable-1.png", "cable-2.png")]
        choose_files(page, paths)
        page.get_by_role("region", name="Upload files").scroll_into_view_if_needed()
        console.screenshot("upload")

        page.goto(f"{console.url}#/tickets/{ticket_id}")
        expect(page.get_by_role("rowheader", name=re.compile("modem-front.png"))).to_be_visible()
        console.screenshot("ticket")

        page.goto(f"{console.url}#/users")
        expect(page.get_by_role("rowheader", name=re.compile("admin"))).to_be_visible()
        console.screenshot("users")

        page.goto(f"{console.url}#/imports")
        completed = page.get_by_role("cell", name=re.compile("completed")).first
        expect(completed).to_be_visible(timeout=30_000)
        console.screenshot("imports")
        # The showcase's import (the desktop run's wizard adds a dry run to the list).
        page.goto(f"{console.url}#/imports/{job_id}")
        expect(page.get_by_text("Import finished").first).to_be_visible()
        console.screenshot("import-progress")

        page.goto(f"{console.url}#/imports")
        csv = b"Name,E-mail,Town,Notes\nJana Kraus,jana@example.com,Leipzig,VIP\nMaria Schmidt,"
        csv += b"maria@example.com,Berlin,\nOle Lund,ole-at-example.com,Kiel,\n"
        with page.expect_file_chooser() as chooser:
            page.get_by_role("button", name=re.compile("browse files", re.I)).click()
        chooser.value.set_files(str(write(tmp_path, "crm-export.csv", csv)))
        page.get_by_role("button", name=re.compile(r"Upload 1 file", re.I)).click()
        columns = page.get_by_role("heading", name="2. Check the columns")
        expect(columns).to_be_visible()
        columns.scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -60)")
        console.screenshot("import-columns")
        page.get_by_role("button", name="Dry run").click()
        start = page.get_by_role("button", name="Start import")
        expect(start).to_be_visible(timeout=30_000)
        page.get_by_label("Dry run counts").scroll_into_view_if_needed()
        console.screenshot("import-dry-run")

        page.goto(f"{console.url}#/audit")
        expect(page.get_by_role("cell", name="login.success").first).to_be_visible()
        console.screenshot("audit")

        page.goto(f"{console.url}#/overview")
        expect(page.get_by_role("list", name="Bytes per customer")).to_contain_text("Maria Schmidt")
        expect(page.get_by_role("table", name="Imports per day")).to_be_visible()
        expect(page.locator("canvas").first).to_be_visible()
        console.screenshot("overview")
