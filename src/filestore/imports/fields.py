"""The fields a customer import fills, with their aliases: the one list every part reads.

The request schema checks mapping targets against it, the column plan matches headers with it,
validation takes each field's length from the `customers` column it is written to, and the
batch writer builds its staging table and COPY from it.

Header names compare without case, spaces and punctuation (`Full Name` and `E-mail Address`
are `full_name` and an alias of `email`); mapping targets are field names or aliases as
written. An alias is another word for a field (`zip` for `postal_code`); using one is fine,
and the job's warnings say so, since a column read as the wrong field is the kind of mistake
one wants to see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import String

from filestore.auth import passwords
from filestore.customers.models import Customer


def normalise(name: str) -> str:
    """Column and field names compare without case, spaces and punctuation (letters of any
    script and digits are kept: `Street 1` is `street1`)."""
    return re.sub(r"[\W_]+", "", name).lower()


@dataclass(frozen=True)
class ImportField:
    name: str
    max_length: int
    aliases: tuple[str, ...] = ()


def _customer_column_length(name: str) -> int:
    column_type = Customer.__table__.c[name].type
    assert isinstance(column_type, String)
    assert column_type.length is not None
    return column_type.length


def _customer_field(name: str, *aliases: str) -> ImportField:
    return ImportField(name, _customer_column_length(name), aliases)


FIELDS = (
    _customer_field("full_name", "name", "customer name", "contact name"),
    _customer_field("email", "e-mail", "e-mail address", "email address", "mail"),
    _customer_field("phone", "mobile", "telephone", "phone number", "mobile phone", "cell", "tel"),
    _customer_field(
        "address", "street", "street 1", "street address", "address 1", "address line 1"
    ),
    _customer_field("city", "town"),
    _customer_field("state", "province", "region", "county"),
    _customer_field(
        "postal_code", "zip", "zip_code", "zip code", "postcode", "post code", "postal"
    ),
    _customer_field("country", "country code"),
    # Not stored: hashed into the customer user's password_hash.
    ImportField("password", passwords.MAX_LENGTH),
)
CUSTOMER_FIELDS = tuple(f.name for f in FIELDS)
FIELD_LIMITS = {f.name: f.max_length for f in FIELDS}
# What lands in the `customers` row, in this order.
CUSTOMER_COLUMNS = tuple(name for name in CUSTOMER_FIELDS if name != "password")
REQUIRED = ("full_name",)
# What an `on_duplicate` update may change: never the e-mail, which identifies the customer,
# nor the password, which an import only ever sets for a customer it creates.
UPDATABLE = tuple(name for name in CUSTOMER_COLUMNS if name != "email")

_BY_NAME = {normalise(f.name): f.name for f in FIELDS}
_BY_ALIAS = {normalise(alias): f.name for f in FIELDS for alias in f.aliases}
_TARGET_ALIASES = {alias: f.name for f in FIELDS for alias in f.aliases}


@dataclass(frozen=True)
class Resolved:
    """The field a name stands for; `alias` is the name when it was not the field's own."""

    field: str
    alias: str | None = None


def by_name(name: str) -> str | None:
    """The field this name spells (`Full Name` → `full_name`), aliases not considered."""
    return _BY_NAME.get(normalise(name))


def by_alias(name: str) -> str | None:
    """The field this name is an alias of (`zip` → `postal_code`)."""
    return _BY_ALIAS.get(normalise(name))


def resolve(target: str) -> Resolved | None:
    """A mapping target: a field's name or an alias, as written (case aside); None when
    unknown. Stricter than header matching: a target is typed on purpose, so `fullname` is a
    typo to report, not a spelling to guess."""
    word = target.strip().lower()
    if word in CUSTOMER_FIELDS:
        return Resolved(word)
    field_name = _TARGET_ALIASES.get(word)
    return None if field_name is None else Resolved(field_name, target)


def known_names() -> str:
    """Every accepted target, for an error message."""
    return "; ".join(
        f"{f.name} (or {', '.join(f.aliases)})" if f.aliases else f.name for f in FIELDS
    )
