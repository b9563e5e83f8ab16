"""Phone formats of an import: the seed's digits_only, unchanged, and E.164 with a region."""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from filestore.imports.phones import (
    PhoneError,
    PhoneRulesError,
    check_rules,
    digits_only,
    e164,
    normalise_phone,
)
from filestore.imports.rows import ColumnPlan, RowError, ValidationRules, ValidRow, validate_row

PLAN = ColumnPlan(
    header=["full_name", "email", "phone"],
    field_index={"full_name": 0, "email": 1, "phone": 2},
)
_SEED_NOISE = re.compile(r"[\s\-.()]")


def seed_digits_only(phone: str) -> str | None:
    """The seed's rule, as validate_row had it before phones.py: the stored digits, or None
    for "phone must contain digits only"."""
    digits = _SEED_NOISE.sub("", phone).removeprefix("+")
    if not digits.isdigit() or not digits.isascii():
        return None
    return digits


def imported(phone: str, **rules: Any) -> str | RowError:
    """What an import stores for `phone` under `rules` (or the row's error)."""
    result = validate_row(2, ["Ana", "ana@example.com", phone], PLAN, ValidationRules(**rules))
    assert result is not None
    if isinstance(result, ValidRow):
        return result.values["phone"] or ""
    return result


class TestDigitsOnly:
    @given(
        phone=st.one_of(
            st.text(st.sampled_from("+0123456789 -.()x٣\t")),
            st.text(),
        ).map(str.strip)
    )
    @settings(max_examples=400, deadline=None)
    def test_identical_to_the_seed(self, phone: str) -> None:
        # Longer values fail the field's length check before the phone format is applied.
        assume(phone and len(phone) <= 32)
        seed = seed_digits_only(phone)
        row = imported(phone)
        if seed is None:
            assert isinstance(row, RowError)
            assert (row.column, row.error) == ("phone", "phone must contain digits only")
        else:
            assert row == seed

    @pytest.mark.parametrize(
        ("value", "stored"),
        [("+1 (555) 123-4567", "15551234567"), ("555.123.4567", "5551234567")],
    )
    def test_examples(self, value: str, stored: str) -> None:
        assert normalise_phone(value, "digits_only") == stored

    def test_arabic_digits_refused_as_the_seed_did(self) -> None:
        with pytest.raises(PhoneError, match="digits only"):
            digits_only("٣٣٣")


class TestE164:
    @pytest.mark.parametrize(
        ("value", "region", "stored"),
        [
            ("+1 (555) 123-4567", None, "+15551234567"),
            ("(555) 123-4567", "US", "+15551234567"),
            ("(555) 123-4567", "us", "+15551234567"),
            ("030 1234567", "DE", "+49301234567"),
            ("0044 20 7946 0958", "DE", "+442079460958"),
            ("+44 20 7946 0958", "US", "+442079460958"),
            ("1-800-FLOWERS", "US", "+18003569377"),
            ("+61 (0)3 9797 0198", None, "+61397970198"),
            ("+39 06 1234 5678", None, "+390612345678"),
        ],
    )
    def test_normalised(self, value: str, region: str | None, stored: str) -> None:
        assert normalise_phone(value, "e164", region) == stored

    @pytest.mark.parametrize(
        ("value", "region", "reason"),
        [
            ("123", "US", "too short for +1 (US)"),
            ("+33 1 23", None, "too short for +33 (FR)"),
            ("12345678901234567890", "US", "too long"),
            ("555 1234", "US", "local number: add the area code"),
            ("+999 1234567", None, "country code is unknown"),
            ("+62 7627789093977645", None, "E.164 allows 15"),
            ("abc", "US", "not a phone number"),
            ("(555) 123-4567", None, "no country code (+...) and validation_rules.default_region"),
            ("+1 555 123 4567 ext. 89", None, "extension (89)"),
        ],
    )
    def test_impossible_refused_with_reason(
        self, value: str, region: str | None, reason: str
    ) -> None:
        with pytest.raises(PhoneError) as caught:
            e164(value, region)
        assert reason in str(caught.value)

    @given(digits=st.text(st.sampled_from("0123456789"), min_size=1, max_size=20))
    @settings(max_examples=200, deadline=None)
    def test_stored_value_is_e164_or_refused(self, digits: str) -> None:
        try:
            stored = e164("+" + digits, None)
        except PhoneError:
            return
        assert stored.startswith("+")
        assert stored[1:].isdigit()
        assert len(stored) <= 16  # E.164: at most 15 digits
        if phonenumbers.is_valid_number(phonenumbers.parse(stored)):
            assert e164(stored, None) == stored


class TestRules:
    def test_region_is_checked(self) -> None:
        assert check_rules("e164", "gb") == "GB"
        assert check_rules("digits_only", None) is None
        with pytest.raises(PhoneRulesError, match="two-letter"):
            check_rules("e164", "Germany")
        with pytest.raises(PhoneRulesError, match="phone_format must be one of"):
            check_rules("international", None)

    def test_any_keeps_the_value_as_written(self) -> None:
        assert normalise_phone("+1 (555) 123", "any") == "+1 (555) 123"
        assert imported("+1 (555) 123", phone_format="any") == "+1 (555) 123"

    def test_e164_through_validation(self) -> None:
        assert imported("(555) 123-4567", phone_format="e164", default_region="US") == (
            "+15551234567"
        )
        row = imported("555 1234", phone_format="e164", default_region="US")
        assert isinstance(row, RowError)
        assert row.column == "phone"
        assert row.value == "555 1234"
        assert "local number" in row.error
