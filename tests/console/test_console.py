"""The staff console in a real browser (Debian's chromium, Playwright), against a live server
on S3: controls are found by role and label, as a person finds them."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from tests.console.conftest import Console


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
