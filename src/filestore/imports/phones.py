"""Phone numbers in an import: `phone_format` "digits_only" (the seed's), "any" or "e164".

"digits_only" strips spaces, dashes, dots, parentheses and one leading `+`, and refuses
anything that is not then ASCII digits: exactly what the import did before this module.
"any" stores the value as written.

"e164" parses with `phonenumbers` (Google's libphonenumber metadata), using
`validation_rules.default_region` for numbers written without a country code, and stores
`+<country code><number>`. A number is refused when it is impossible (too short, too long,
an unknown country code, a length no number of that country has); it is not required to be
in a range already assigned, since numbering plans change faster than the metadata and the
issue's own example, +1 (555) 123-4567, is a possible but unassigned number. An extension is
refused rather than dropped: E.164 cannot hold it.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

DIGITS_ONLY = "digits_only"
AS_WRITTEN = "any"
E164 = "e164"
PHONE_FORMATS = (DIGITS_ONLY, AS_WRITTEN, E164)
_NOISE = re.compile(r"[\s\-.()]")
_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "its country code is unknown",
    NumberParseException.NOT_A_NUMBER: "it is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "it is too short",
    NumberParseException.TOO_LONG: "it is too long",
}
E164_MAX_DIGITS = 15

_POSSIBLE_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "its country code is unknown",
    ValidationResult.TOO_SHORT: "it is too short for {region}",
    ValidationResult.TOO_LONG: "it is too long for {region}",
    ValidationResult.INVALID_LENGTH: "no number in {region} has that many digits",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "it is a local number: add the area code",
}


class PhoneError(ValueError):
    """The value cannot be stored as a phone number; the message is the row's reason."""


class PhoneRulesError(ValueError):
    """`phone_format` or `default_region` in validation_rules is not usable."""


def check_rules(phone_format: str, default_region: str | None) -> str | None:
    """The region in canonical form (upper case), after checking the rules make sense."""
    if phone_format not in PHONE_FORMATS:
        raise PhoneRulesError(
            f"phone_format must be one of {', '.join(PHONE_FORMATS)}, not {phone_format!r}"
        )
    if default_region is None or default_region == "":
        return None
    region = default_region.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise PhoneRulesError(
            f"default_region {default_region!r} is not a known region: use a two-letter "
            "ISO 3166 country code such as US, GB, DE"
        )
    return region


def normalise_phone(value: str, phone_format: str, default_region: str | None = None) -> str:
    """`value` (already stripped, not empty) as it is stored, or PhoneError with the reason.

    A `phone_format` other than "digits_only" and "e164" leaves the value as it is ("any"),
    as the import did before this module.
    """
    if phone_format == DIGITS_ONLY:
        return digits_only(value)
    if phone_format == E164:
        return e164(value, default_region)
    return value


def digits_only(value: str) -> str:
    digits = _NOISE.sub("", value).removeprefix("+")
    if not digits.isdigit() or not digits.isascii():
        raise PhoneError("phone must contain digits only")
    return digits


def e164(value: str, default_region: str | None) -> str:
    region = default_region.upper() if default_region else None
    try:
        number = phonenumbers.parse(value, region)
    except NumberParseException as exc:
        unknown = exc.error_type == NumberParseException.INVALID_COUNTRY_CODE
        if unknown and region is None and not value.startswith("+"):
            raise PhoneError(
                "phone has no country code (+...) and validation_rules.default_region is not set"
            ) from None
        reason = _PARSE_REASONS.get(exc.error_type, "it cannot be read")
        raise PhoneError(f"phone is not a possible number: {reason}") from None
    if number.extension:
        raise PhoneError(
            f"phone has an extension ({number.extension}), which E.164 cannot hold: "
            "put it in another column"
        )
    _check_possible(number)
    stored = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # "+61 (0)3 ..." keeps one trunk zero on the first pass ("+6103..."), which reads back as
    # "+613...": store the form that reads back as itself, so a re-import changes nothing.
    for _ in range(E164_MAX_DIGITS):
        number = phonenumbers.parse(stored, None)
        again = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if again == stored:
            break
        stored = again
    _check_possible(number)
    # libphonenumber calls some 16- and 17-digit numbers possible (Indonesia, Japan); E.164
    # itself holds at most 15 digits, and the column promises E.164.
    if len(stored) - 1 > E164_MAX_DIGITS:
        raise PhoneError(
            f"phone is not a possible number: it has {len(stored) - 1} digits "
            f"and E.164 allows {E164_MAX_DIGITS}"
        )
    return stored


def _check_possible(number: phonenumbers.PhoneNumber) -> None:
    result = phonenumbers.is_possible_number_with_reason(number)
    if result != ValidationResult.IS_POSSIBLE:
        code = number.country_code or 0
        where = phonenumbers.region_code_for_country_code(code)
        reason = _POSSIBLE_REASONS.get(result, "it is not possible").format(
            region=f"+{code} ({where})"
        )
        raise PhoneError(f"phone is not a possible number: {reason}")
