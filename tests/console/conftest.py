"""Browser fixtures for the console: one production-mode server on SeaweedFS S3, Debian's
chromium driven by Playwright (`executable_path`, no browser download), a fresh browser
context per test that records any JavaScript dialog and any Content-Security-Policy report.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.conftest import Postgres, ServerFactory
from tests.fixtures.live import Api, LiveServer, production_env
from tests.fixtures.servers import SeaweedFS, s3_env

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"


def screenshot_dir() -> Path:
    """docs/console/ when `make screenshots` asks for it (FILESTORE_SCREENSHOTS=docs), else a
    temporary folder: a plain test run must not rewrite tracked files."""
    if os.environ.get("FILESTORE_SCREENSHOTS") == "docs":
        return DOCS_SCREENSHOTS
    return Path(tempfile.gettempdir()) / "filestore-console-screenshots"


@pytest.fixture(scope="session")
def console_server(
    postgres: Postgres, seaweed: SeaweedFS, start_filestore: ServerFactory
) -> LiveServer:
    """A production-mode server (Secure cookies, real secrets) storing on S3, running its
    import jobs in-process."""
    env = production_env(postgres.create_database("filestore_console"))
    env["MAX_FILE_SIZE"] = str(12 * 1024 * 1024)
    env["FILESTORE_IN_PROCESS_WORKER"] = "true"
    env.update(s3_env(seaweed))
    return start_filestore(env)


# Module scope, not session: the sync API keeps an event loop running in this thread while it
# is started, and pytest-asyncio cannot run the async tests of other modules meanwhile.
@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            "no chromium: `make test-deps` installs Debian's chromium when run as root with "
            "apt-get; the console's browser tests need it"
        )
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, headless=True)
    yield browser
    browser.close()


@dataclass
class Watched:
    """What a page did that a test must see: dialogs (an XSS would open one), CSP reports."""

    dialogs: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class Console:
    """A signed-out browser page on the console, and the server's admin API."""

    page: Page
    server: LiveServer
    watched: Watched

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/console"

    def admin(self) -> Api:
        return self.server.admin()

    def sign_in(self, username: str, password: str) -> None:
        page = self.page
        page.goto(self.url)
        page.get_by_label("Username or e-mail").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Sign out").wait_for()

    def sign_in_as_admin(self) -> None:
        self.sign_in("admin", self.server.admin_password)

    def new_staff(self) -> tuple[str, str]:
        user, password = self.admin().new_user("staff")
        return str(user["username"]), password

    def screenshot(self, name: str) -> None:
        """<name>-<width>.png at this page's viewport size, in `screenshot_dir()`."""
        folder = screenshot_dir()
        folder.mkdir(parents=True, exist_ok=True)
        size = self.page.viewport_size or DESKTOP
        self.page.screenshot(path=folder / f"{name}-{size['width']}.png", full_page=False)


def _watch(page: Page) -> Watched:
    watched = Watched()

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            watched.csp_violations.append(message.text)
        elif message.type == "error":
            watched.errors.append(message.text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
    return watched


def open_console(
    browser: Browser, server: LiveServer, viewport: dict[str, int]
) -> Iterator[Console]:
    context = browser.new_context(viewport=viewport, accept_downloads=True)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    page = context.new_page()
    watched = _watch(page)
    try:
        yield Console(page, server, watched)
    finally:
        context.close()
    assert watched.dialogs == [], f"a JavaScript dialog opened: {watched.dialogs}"
    assert watched.csp_violations == [], f"CSP violations: {watched.csp_violations}"


@pytest.fixture
def console(browser: Browser, console_server: LiveServer) -> Iterator[Console]:
    """A desktop-sized (1280x800) page."""
    yield from open_console(browser, console_server, DESKTOP)


@pytest.fixture
def phone_console(browser: Browser, console_server: LiveServer) -> Iterator[Console]:
    """A phone-sized (390x844) page."""
    yield from open_console(browser, console_server, PHONE)
