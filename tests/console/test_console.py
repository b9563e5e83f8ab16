"""The staff console in a real browser (Debian's chromium, Playwright), against a live server
on S3: controls are found by role and label, as a person finds them."""

from __future__ import annotations

import hashlib
import re
import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.console.conftest import Console
from tests.fixtures.live import Api


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:6]}"


class TestSignIn:
    def test_sign_in_and_out(self, console: Console) -> None:
        username, password = console.new_staff()
        page = console.page
        page.goto(console.url)
        expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
        page.get_by_label("Username or e-mail").fill(username)
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Customers")).to_be_visible()
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert cookies["filestore_access"]["httpOnly"]
        assert cookies["filestore_access"]["sameSite"] == "Strict"
        assert cookies["filestore_access"]["secure"]
        assert page.evaluate("Object.keys(localStorage).length") == 0
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
        page.reload()
        expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()


class TestCustomerSearch:
    def test_type_ahead_finds_by_name_and_email(self, console: Console) -> None:
        name = unique("Ada Lovelace")
        customer = console.admin().new_customer(full_name=name)
        console.sign_in_as_admin()
        page = console.page
        search = page.get_by_label("Search customers")
        search.fill(name.split()[-1])
        results = page.get_by_role("list", name="Customers found")
        expect(results.get_by_role("link")).to_have_count(1)
        search.fill(customer["email"].upper())
        expect(results.get_by_role("link", name=re.compile(name))).to_be_visible()
        search.fill("no-such-customer-" + uuid.uuid4().hex)
        expect(page.get_by_text("No customer matches")).to_be_visible()
        search.fill(name)
        results.get_by_role("link", name=re.compile(name)).click()
        expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()
        expect(page.get_by_text("No files yet")).to_be_visible()


def png_bytes(
    width: int = 64, height: int = 48, rgb: tuple[int, int, int] = (36, 84, 214)
) -> bytes:
    """A real PNG (solid colour), so the server's type sniffing and the browser both accept it."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def pdf_bytes() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


def write(directory: Path, name: str, content: bytes) -> Path:
    path = directory / name
    path.write_bytes(content)
    return path


def open_customer(console: Console, customer: dict[str, Any]) -> None:
    console.page.goto(f"{console.url}#/customers/{customer['id']}")
    expect(console.page.get_by_role("heading", name=customer["full_name"], level=1)).to_be_visible()


def choose_files(page: Page, paths: list[Path]) -> None:
    """Open the upload panel and pick files with the Dashboard's "browse files" button."""
    page.get_by_role("button", name="Upload files").click()
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name=re.compile("browse files", re.I)).click()
    chooser.value.set_files([str(p) for p in paths])


def files_table(page: Page) -> Locator:
    return page.get_by_role("table")


class TestUpload:
    def test_three_files_reach_100_percent_and_are_listed(
        self, console: Console, tmp_path: Path
    ) -> None:
        admin = console.admin()
        customer = admin.new_customer(full_name=unique("Grace Hopper"))
        ticket = admin.new_ticket(customer["id"], subject="Router photos")
        paths = [
            write(tmp_path, "router.png", png_bytes()),
            write(tmp_path, "contract.pdf", pdf_bytes()),
            write(tmp_path, "lines.csv", b"name,email\n" + b"a,b@example.com\n" * 40_000),
        ]
        console.sign_in_as_admin()
        page = console.page
        open_customer(console, customer)
        choose_files(page, paths)
        page.get_by_label("File type").select_option("photo")
        page.get_by_label("Attach to ticket").select_option(label=f"#{ticket['id']} Router photos")
        page.get_by_label("Expires").select_option(label="In 30 days")
        page.get_by_role("button", name=re.compile(r"Upload 3 files", re.I)).click()
        expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
        expect(page.get_by_text("Complete", exact=True)).to_be_visible()
        expect(page.locator("#status")).to_have_text("3 files uploaded.")
        table = files_table(page)
        for path in paths:
            expect(
                table.get_by_role("rowheader", name=re.compile(re.escape(path.name)))
            ).to_be_visible()
        listed = admin.get(f"/files/customer/{customer['id']}").json()
        assert sorted(f["filename"] for f in listed) == sorted(p.name for p in paths)
        assert {f["file_type"] for f in listed} == {"photo"}
        assert {f["ticket_id"] for f in listed} == {ticket["id"]}
        assert all(f["expires_at"] for f in listed)
        by_name = {f["filename"]: f for f in listed}
        for path in paths:
            assert by_name[path.name]["file_size"] == path.stat().st_size
            body = admin.get(f"/files/download/{by_name[path.name]['id']}").content
            assert hashlib.sha256(body).hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()

    def test_interrupted_upload_resumes_where_it_stopped(
        self, console: Console, tmp_path: Path
    ) -> None:
        admin = console.admin()
        customer = admin.new_customer(full_name=unique("Resume"))
        content = b"id,value\n" + b"".join(b"%08d,%s\n" % (i, b"x" * 40) for i in range(180_000))
        path = write(tmp_path, "big.csv", content)
        console.sign_in_as_admin()
        page = console.page
        offsets: list[int] = []
        page.on(
            "request",
            lambda r: (
                offsets.append(int(r.headers.get("upload-offset", "-1")))
                if r.method == "PATCH"
                else None
            ),
        )
        # 1 MiB/s up: the 9 MB file takes seconds, so the cut lands mid-upload.
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 0,
                "downloadThroughput": -1,
                "uploadThroughput": 1024 * 1024,
            },
        )
        open_customer(console, customer)
        choose_files(page, [path])
        with page.expect_response(lambda r: r.request.method == "PATCH" and r.ok):
            page.get_by_role("button", name=re.compile(r"Upload 1 file", re.I)).click()
        page.context.set_offline(True)
        sent_before = len(offsets)
        page.wait_for_timeout(2000)
        assert not admin.get(f"/files/customer/{customer['id']}").json()
        page.context.set_offline(False)
        expect(page.get_by_text("Complete", exact=True)).to_be_visible(timeout=60_000)
        expect(
            files_table(page).get_by_role("rowheader", name=re.compile("big.csv"))
        ).to_be_visible()
        after = offsets[sent_before:]
        assert after, f"nothing was sent after the network came back: {offsets}"
        assert after[0] > 0, f"the upload started over instead of resuming: {offsets}"
        assert offsets.count(0) == 1, f"the upload started over: {offsets}"
        listed = admin.get(f"/files/customer/{customer['id']}").json()
        body = admin.get(f"/files/download/{listed[0]['id']}").content
        assert body == content


def upload_via_api(
    api: Api, customer_id: int | None, name: str, content: bytes, **fields: Any
) -> int:
    response = api.upload(content, name, customer_id=customer_id, **fields)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


class TestFileActions:
    def test_preview_image_and_pdf_inline(self, console: Console) -> None:
        admin = console.admin()
        customer = admin.new_customer(full_name=unique("Preview"))
        upload_via_api(admin, customer["id"], "meter.png", png_bytes())
        upload_via_api(admin, customer["id"], "bill.pdf", pdf_bytes())
        console.sign_in_as_admin()
        page = console.page
        open_customer(console, customer)
        with page.expect_response(lambda r: "inline=true" in r.url) as shown:
            page.get_by_role("button", name="Preview meter.png").click()
        dialog = page.get_by_role("dialog", name="meter.png")
        image = dialog.get_by_role("img", name="Preview of meter.png")
        expect(image).to_be_visible()
        assert shown.value.status == 200
        assert image.evaluate("img => img.naturalWidth") == 64
        dialog.get_by_role("button", name="Close").click()
        expect(dialog).to_be_hidden()
        with page.expect_response(lambda r: "inline=true" in r.url) as shown:
            page.get_by_role("button", name="Preview bill.pdf").click()
        frame = page.get_by_role("dialog", name="bill.pdf").locator("iframe")
        expect(frame).to_have_attribute("title", "Preview of bill.pdf")
        assert shown.value.status == 200
        assert shown.value.headers["content-type"] == "application/pdf"
        assert shown.value.headers["content-disposition"].startswith("inline")
        page.keyboard.press("Escape")

    def test_download_and_copy_link(self, console: Console) -> None:
        admin = console.admin()
        customer = admin.new_customer(full_name=unique("Download"))
        upload_via_api(admin, customer["id"], "notes.csv", b"a,b\n1,2\n")
        console.sign_in_as_admin()
        page = console.page
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        open_customer(console, customer)
        with page.expect_download() as download:
            page.get_by_role("link", name="Download notes.csv").click()
        assert download.value.suggested_filename == "notes.csv"
        assert Path(download.value.path()).read_bytes() == b"a,b\n1,2\n"
        page.get_by_role("button", name="Copy link to notes.csv").click()
        link = page.get_by_role("dialog", name="Download link").get_by_label("Link")
        expect(link).to_have_value(re.compile(r"^http"))
        assert page.evaluate("navigator.clipboard.readText()") == link.input_value()
        # The link is short-lived and presigned (S3): it works without any session.
        response = httpx.get(link.input_value())
        assert response.status_code == 200
        assert response.content == b"a,b\n1,2\n"

    def test_delete_asks_first(self, console: Console) -> None:
        admin = console.admin()
        customer = admin.new_customer(full_name=unique("Delete"))
        file_id = upload_via_api(admin, customer["id"], "old.csv", b"x,y\n")
        console.sign_in_as_admin()
        page = console.page
        open_customer(console, customer)
        page.get_by_role("button", name="Delete old.csv").click()
        dialog = page.get_by_role("dialog", name="Delete this file?")
        dialog.get_by_role("button", name="Cancel").click()
        expect(
            files_table(page).get_by_role("rowheader", name=re.compile("old.csv"))
        ).to_be_visible()
        page.get_by_role("button", name="Delete old.csv").click()
        dialog.get_by_role("button", name="Delete").click()
        expect(page.get_by_text("No files yet")).to_be_visible()
        expect(page.locator("#status")).to_have_text("old.csv deleted.")
        assert admin.get(f"/files/{file_id}").status_code == 404


class TestRoles:
    def test_customer_user_sees_only_its_own_customer(self, console: Console) -> None:
        admin = console.admin()
        own = admin.new_customer(full_name=unique("Own"))
        other = admin.new_customer(full_name=unique("Other"))
        upload_via_api(admin, own["id"], "mine.csv", b"a\n1\n")
        upload_via_api(admin, other["id"], "theirs.csv", b"a\n2\n")
        user, password = admin.new_user("customer", own["id"])
        console.sign_in(user["username"], password)
        page = console.page
        expect(page.get_by_role("heading", name=own["full_name"], level=1)).to_be_visible()
        expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_text(
            ["My files", "Tickets"]
        )
        expect(
            files_table(page).get_by_role("rowheader", name=re.compile("mine.csv"))
        ).to_be_visible()
        expect(page.get_by_text("theirs.csv")).to_have_count(0)
        page.goto(f"{console.url}#/customers/{other['id']}")
        expect(page.get_by_text("Customer not found")).to_be_visible()
        expect(page.get_by_text("theirs.csv")).to_have_count(0)
        page.goto(f"{console.url}#/customers")
        expect(page.get_by_role("heading", name=own["full_name"], level=1)).to_be_visible()


class TestSecurity:
    def test_names_from_the_database_and_files_are_text(
        self, console: Console, tmp_path: Path
    ) -> None:
        admin = console.admin()
        evil = "<img src=x onerror=alert(1)>"
        customer = admin.new_customer(full_name=evil)
        admin.new_ticket(customer["id"], subject="<script>alert(2)</script>")
        upload_via_api(admin, customer["id"], "&lt;b&gt;bold&amp;.csv", b"a\n")
        picked = write(tmp_path, "<img src=x onerror=alert(3)>.png", png_bytes())
        console.sign_in_as_admin()
        page = console.page
        page.get_by_label("Search customers").fill("onerror")
        expect(page.get_by_role("link", name=re.compile(re.escape(evil)))).to_be_visible()
        open_customer(console, customer)
        expect(
            page.get_by_role("link").filter(has_text="<script>alert(2)</script>")
        ).to_be_visible()
        expect(
            page.get_by_role("rowheader", name=re.compile(re.escape("&lt;b&gt;bold&amp;.csv")))
        ).to_be_visible()
        choose_files(page, [picked])
        page.get_by_role("button", name=re.compile(r"Upload 1 file", re.I)).click()
        expect(page.get_by_text("Complete", exact=True)).to_be_visible()
        expect(
            page.get_by_role(
                "rowheader", name=re.compile(re.escape("_img src=x onerror=alert(3)_.png"))
            )
        ).to_be_visible()
        assert page.locator("img[src='x']").count() == 0
        # The dialog and CSP watchers of the fixture fail the test if anything ran.

    def test_page_headers(self, console: Console) -> None:
        response = httpx.get(console.url)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "/console" not in str(
            httpx.get(f"{console.server.base_url}/openapi.json").json()["paths"]
        )


class TestPlainErrors:
    def test_a_refused_type_is_explained_next_to_the_file(
        self, console: Console, tmp_path: Path
    ) -> None:
        admin = console.admin()
        customer = admin.new_customer(full_name=unique("Refused"))
        tool = write(tmp_path, "tool.exe", b"MZ" + b"\x00" * 200)
        console.sign_in_as_admin()
        page = console.page
        open_customer(console, customer)
        choose_files(page, [tool])
        page.get_by_role("button", name=re.compile(r"Upload 1 file", re.I)).click()
        expect(page.get_by_text("This type of file is not allowed.").first).to_be_visible()
        expect(page.locator("#status")).to_contain_text(
            "tool.exe was not uploaded: This type of file is not allowed."
        )
        assert admin.get(f"/files/customer/{customer['id']}").json() == []


class TestKeyboard:
    def test_sign_in_search_and_preview_without_a_mouse(self, console: Console) -> None:
        admin = console.admin()
        name = unique("Keyboard")
        customer = admin.new_customer(full_name=name)
        upload_via_api(admin, customer["id"], "dish.png", png_bytes())
        page = console.page
        page.goto(console.url)
        # The username field has the focus; Tab moves on, Enter submits.
        expect(page.get_by_label("Username or e-mail")).to_be_focused()
        page.keyboard.type("admin")
        page.keyboard.press("Tab")
        page.keyboard.type(console.server.admin_password)
        page.keyboard.press("Enter")
        search = page.get_by_label("Search customers")
        expect(search).to_be_focused()
        page.keyboard.type(name)
        link = page.get_by_role("link", name=re.compile(name))
        expect(link).to_have_count(1)
        link.focus()
        page.keyboard.press("Enter")
        preview = page.get_by_role("button", name="Preview dish.png")
        preview.focus()
        page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="dish.png")
        expect(dialog).to_be_visible()
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()


class TestCustomerLogin:
    def test_a_customer_without_a_login_gets_a_link_from_its_page(self, console: Console) -> None:
        # Imported or created without a password: no login until a link is asked for.
        customer = console.admin().new_customer(full_name=unique("No Login"))
        console.sign_in_as_admin()
        open_customer(console, customer)
        page = console.page
        page.get_by_role("button", name=f"Send a login link to {customer['full_name']}").click()
        link = page.get_by_role("dialog", name="Reset link").get_by_label("Link")
        expect(link).to_have_value(re.compile(r"/auth/reset-password#token="))
        token = link.input_value().split("#token=")[1]
        password = "Pw-" + uuid.uuid4().hex
        redeemed = httpx.post(
            f"{console.server.base_url}/auth/reset-password",
            json={"token": token, "new_password": password},
        )
        assert redeemed.status_code == 204, redeemed.text
        assert Api(console.server.base_url).login(customer["email"], password)


class TestAdmin:
    def test_users_create_change_role_deactivate_and_reset(self, console: Console) -> None:
        console.sign_in_as_admin()
        page = console.page
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
        username = f"agent-{uuid.uuid4().hex[:6]}"
        form = page.get_by_role("form", name="New user")
        form.get_by_label("Username").fill(username)
        form.get_by_label("Full name").fill("Support Agent")
        form.get_by_label("Role").select_option("staff")
        form.get_by_label("Password").fill("Pw-" + uuid.uuid4().hex)
        form.get_by_role("button", name="Create user").click()
        expect(page.locator("#status")).to_have_text(f"User {username} created.")
        role = page.get_by_label(f"Role of {username}")
        role.select_option("admin")
        expect(page.locator("#status")).to_have_text(f"{username} is now admin.")
        page.get_by_role("button", name=f"Deactivate {username}").click()
        expect(page.get_by_role("button", name=f"Activate {username}")).to_be_visible()
        page.get_by_role("button", name=f"Send a reset link to {username}").click()
        link = page.get_by_role("dialog", name="Reset link").get_by_label("Link")
        expect(link).to_have_value(re.compile(r"/auth/reset-password#"))
        page.keyboard.press("Escape")
        users = console.admin().get("/users", params={"role": "admin"}).json()
        created = next(u for u in users if u["username"] == username)
        assert created["is_active"] is False

        page.get_by_role("link", name="Audit trail").click()
        page.get_by_label("Action").select_option("user.created")
        expect(page.get_by_role("cell", name="user.created").first).to_be_visible()
        page.get_by_label("User", exact=True).select_option(label="admin")
        page.get_by_label("Since").fill("2000-01-01")
        expect(page.get_by_role("row").filter(has_text="user.created").first).to_be_visible()

    def test_staff_see_no_admin_screens(self, console: Console) -> None:
        username, password = console.new_staff()
        console.sign_in(username, password)
        page = console.page
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link")).to_have_text(
            ["Overview", "Customers", "Tickets", "Imports"]
        )
        page.goto(f"{console.url}#/users")
        expect(page.get_by_role("heading", name="Customers", level=1)).to_be_visible()


def upload_in_wizard(page: Page, csv: Path) -> None:
    """Open Imports and upload the CSV through its picker: the wizard's step 1."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports").click()
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name=re.compile("browse files", re.I)).click()
    chooser.value.set_files(str(csv))
    page.get_by_role("button", name=re.compile(r"Upload 1 file", re.I)).click()


class TestImport:
    def test_csv_with_a_duplicate_and_an_invalid_row(
        self, console: Console, tmp_path: Path
    ) -> None:
        admin = console.admin()
        taken = admin.new_customer(full_name="Already Here")
        tag = uuid.uuid4().hex[:6]
        # "Location" matches no field: the wizard maps it to City by hand.
        csv = write(
            tmp_path,
            "customers.csv",
            (
                "Name,E-mail,Location\n"
                f"Ann Import,ann-{tag}@example.com,Berlin\n"
                f"Ben Import,ben-{tag}@example.com,Hamburg\n"
                f"Already Here,{taken['email']},Bonn\n"
                "Broken Row,not-an-email,Köln\n"
            ).encode(),
        )
        console.sign_in_as_admin()
        page = console.page
        upload_in_wizard(page, csv)

        # 2. The detected header, each column's field, the first rows with their verdicts.
        expect(page.get_by_role("heading", name="2. Check the columns")).to_be_visible()
        expect(page.get_by_text("header on line 1, 3 columns")).to_be_visible()
        expect(page.get_by_label("Column “Name”")).to_have_value("full_name")
        expect(page.get_by_label("Column “E-mail”")).to_have_value("email")
        location = page.get_by_label("Column “Location”")
        expect(location).to_have_value("")
        rows = page.get_by_role("table", name=re.compile("first rows of the file"))
        expect(rows.get_by_role("row")).to_have_count(5)
        expect(rows.get_by_role("row", name=re.compile("not-an-email"))).to_contain_text("Invalid")
        expect(rows.get_by_role("row", name=re.compile("Already Here"))).to_contain_text(
            "Duplicate"
        )
        expect(rows.get_by_role("cell", name="Berlin")).to_have_count(0)
        location.select_option(label="City")
        expect(rows.get_by_role("cell", name="Berlin")).to_be_visible()
        # A row whose e-mail a customer has updates it (validation_rules.on_duplicate).
        page.get_by_label("Rows whose e-mail a customer already has").select_option("update")
        expect(rows.get_by_role("row", name=re.compile("Already Here"))).to_contain_text("Update")

        # 3. The dry run: counts of the whole file, the invalid row with its reason.
        page.get_by_role("button", name="Dry run").click()
        expect(page.locator("#status")).to_have_text(
            "Dry run: 2 new, 1 duplicates, 1 invalid.", timeout=60_000
        )
        expect(page.get_by_label("Dry run counts")).to_have_text(
            re.compile(r"New\s*2\s*Duplicates\s*1\s*Invalid\s*1")
        )
        expect(page.get_by_text("Duplicates include the rows that would update")).to_be_visible()
        invalid = page.get_by_role("table", name="Invalid rows")
        expect(invalid.get_by_role("row")).to_have_count(2)
        expect(invalid.get_by_role("row").nth(1)).to_contain_text("not-an-email")
        assert admin.get("/customers", params={"q": f"-{tag}@"}).json() == []

        # 4. The import itself, with the same mapping, and its live progress.
        page.get_by_role("button", name="Start import").click()
        expect(page.get_by_role("heading", name="Import progress")).to_be_visible()
        expect(page.locator("#status")).to_have_text(
            "Import finished: 2 imported, 1 updated, 0 duplicates skipped, 1 invalid.",
            timeout=60_000,
        )
        real_import = page.url.rsplit("/", 1)[-1]
        expect(page.get_by_role("progressbar", name="Import progress")).to_have_attribute(
            "value", "4"
        )
        with page.expect_download() as download:
            page.get_by_role("link", name="Download errors.csv").click()
        errors = Path(download.value.path()).read_text()
        assert "not-an-email" in errors
        found = admin.get("/customers", params={"q": f"-{tag}@"}).json()
        assert sorted((c["full_name"], c["city"]) for c in found) == [
            ("Ann Import", "Berlin"),
            ("Ben Import", "Hamburg"),
        ]
        assert admin.get(f"/customers/{taken['id']}").json()["city"] == "Bonn"
        page.get_by_role("link", name="← Imports").click()
        page.get_by_label("Status").select_option("completed")
        expect(page.get_by_role("table").get_by_role("link", name="Open").first).to_be_visible()
        # The dry run is listed as one; the import is not.
        jobs = page.get_by_role("table", name="Import jobs, newest first").get_by_role("row")
        expect(jobs.filter(has_text="Dry run").first).to_be_visible()
        imported = jobs.filter(has=page.locator(f'a[href="#/imports/{real_import}"]'))
        expect(imported).to_have_count(1)
        expect(imported).not_to_contain_text("Dry run")

    def test_an_invalid_row_on_a_phone_shows_no_empty_labels(
        self, phone_console: Console, tmp_path: Path
    ) -> None:
        tag = uuid.uuid4().hex[:6]
        csv = write(
            tmp_path,
            "customers.csv",
            (
                "Name,E-mail,Phone\n"
                f"Cay Import,cay-{tag}@example.com,+49 30 1234567\n"
                "Broken Row,not-an-email,\n"
            ).encode(),
        )
        phone_console.sign_in_as_admin()
        page = phone_console.page
        upload_in_wizard(page, csv)

        rows = page.get_by_role("table", name=re.compile("first rows of the file"))
        broken = rows.get_by_role("row", name=re.compile("not-an-email"))
        expect(broken).to_contain_text("Invalid")
        # An invalid row has no values, only its verdict and reasons: no lone field labels.
        cells = broken.get_by_role("cell")
        expect(cells).to_have_count(1)
        expect(cells).to_contain_text("not-an-email")
        valid = rows.get_by_role("row", name=re.compile("Cay Import")).get_by_role("cell")
        expect(valid).to_have_count(4)
        for text in valid.all_inner_texts():
            assert text.strip()
