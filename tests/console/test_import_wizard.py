"""The import wizard's preview step in a real browser: the rows further down the file that
repeat an earlier row's e-mail (`duplicates_in_file`) are named before the dry run, with how
far the preview looked; a file without any shows nothing about them."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.console.conftest import Console
from tests.console.test_console import upload_in_wizard, write

REGION = "Repeated e-mails in the file"


def customers_csv(tag: str, rows: int, repeats: dict[int, int]) -> bytes:
    """`rows` customers with their own e-mail; a data row i in `repeats` takes the e-mail of
    data row `repeats[i]` instead, in capitals (the preview compares ignoring case). Data row
    i is on line i + 1: the header is line 1."""
    lines = ["Name,E-mail,City"]
    for i in range(1, rows + 1):
        email = f"c{repeats.get(i, i)}-{tag}@example.com"
        lines.append(f"Customer {i},{email.upper() if i in repeats else email},Berlin")
    return ("\n".join(lines) + "\n").encode()


def first_rows(page: Page) -> None:
    rows = page.get_by_role("table", name=re.compile("first rows of the file"))
    expect(rows.get_by_role("row").first).to_be_visible()


class TestDuplicatesInFile:
    def test_a_repeat_below_the_shown_rows_is_named_with_its_row(
        self, console: Console, tmp_path: Path
    ) -> None:
        tag = uuid.uuid4().hex[:6]
        # Data rows 1-30; data row 28 (line 29) repeats data row 2's e-mail (line 3).
        csv = write(tmp_path, "repeats.csv", customers_csv(tag, 30, {28: 2}))
        console.sign_in_as_admin()
        page = console.page
        upload_in_wizard(page, csv)

        notice = page.get_by_role("region", name=REGION)
        expect(notice).to_be_visible()
        expect(notice).to_contain_text(
            "1 row repeats an e-mail from earlier in the file (it will be skipped)."
        )
        example = notice.get_by_role("list", name="Repeated rows").get_by_role("listitem")
        expect(example).to_have_count(1)
        expect(example).to_have_text(f"Row 29: c2-{tag}@example.com (first on row 3)")
        # The whole file was read: no word of a partial check.
        expect(notice.get_by_text("Only the first")).to_have_count(0)
        # Only 20 rows are shown; the repeated one is not among them.
        rows = page.get_by_role("table", name=re.compile("first rows of the file"))
        expect(rows.get_by_role("row")).to_have_count(21)
        notice.scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -120)")
        console.screenshot("import-duplicates")

        # Without an e-mail column nothing can repeat: the notice goes with the mapping.
        page.get_by_label("Column “E-mail”").select_option(label="Not imported")
        expect(page.get_by_text("Choose a column for: E-mail.")).to_be_visible()
        expect(page.get_by_role("region", name=REGION)).to_have_count(0)
        page.get_by_label("Column “E-mail”").select_option(label="E-mail")
        expect(page.get_by_role("region", name=REGION)).to_be_visible()

    def test_a_long_file_says_how_far_it_was_checked(
        self, phone_console: Console, tmp_path: Path
    ) -> None:
        tag = uuid.uuid4().hex[:6]
        # 20,100 data rows: more than the preview scans (the 20 shown + 20,000 more).
        repeats = {25: 1, 26: 1, 40: 7}
        csv = write(tmp_path, "long.csv", customers_csv(tag, 20_100, repeats))
        phone_console.sign_in_as_admin()
        page = phone_console.page
        upload_in_wizard(page, csv)

        notice = page.get_by_role("region", name=REGION)
        expect(notice).to_contain_text(
            "3 rows repeat an e-mail from earlier in the file (they will be skipped)."
        )
        expect(notice.get_by_role("listitem")).to_have_count(3)
        expect(notice.get_by_role("listitem").first).to_have_text(
            f"Row 26: c1-{tag}@example.com (first on row 2)"
        )
        expect(notice).to_contain_text(
            "Only the first 20,020 rows were checked here; repeats further down are skipped "
            "too, and the dry run counts them with the duplicates."
        )
        notice.scroll_into_view_if_needed()
        phone_console.screenshot("import-duplicates-long")

    def test_no_repeats_no_notice(self, console: Console, tmp_path: Path) -> None:
        tag = uuid.uuid4().hex[:6]
        csv = write(tmp_path, "unique.csv", customers_csv(tag, 30, {}))
        console.sign_in_as_admin()
        page = console.page
        upload_in_wizard(page, csv)

        first_rows(page)
        expect(page.get_by_role("heading", name="3. Dry run")).to_be_visible()
        expect(page.get_by_role("region", name=REGION)).to_have_count(0)
        expect(page.get_by_text("repeat an e-mail")).to_have_count(0)
