"""Phone numbers: parsing to E.164, masking, and the fictional demo range.

The demo range is `+86 100 NNNN NNNN`: after +86, "10" is Beijing's area
code, and a Beijing subscriber number never starts with 0 (that digit is the
trunk prefix), so no number of this range can be assigned to a real line.
The demo district and the tests draw every phone from it, and production
refuses it.
"""

from __future__ import annotations

import re

import phonenumbers

from app.core.errors import Unprocessable

DEMO_PHONE_PREFIX = "+86100"
DEMO_PHONE_CAPACITY = 100_000_000


# What a client may send: digits, an optional leading +, and the separators
# people type. Stated in the OpenAPI document (app/models/phone.py) and
# checked by `normalize_phone`, so anything else is `invalid_phone`.
PHONE_PATTERN = r"^\+?[0-9][0-9 ()\-.]*$"


class InvalidPhone(Unprocessable):
    code = "invalid_phone"
    title = "Invalid phone number"


def demo_phone(n: int) -> str:
    """The n-th number of the fictional demo range, in E.164."""
    if not 0 <= n < DEMO_PHONE_CAPACITY:
        raise ValueError("demo phone index out of range")
    return f"{DEMO_PHONE_PREFIX}{n:08d}"


def is_demo_phone(e164: str) -> bool:
    return e164.startswith(DEMO_PHONE_PREFIX) and len(e164) == len(DEMO_PHONE_PREFIX) + 8


def normalize_phone(raw: str, *, allow_demo: bool) -> str:
    """E.164 for a real mobile number (a Chinese mobile without +86 is
    accepted), or for a number of the demo range when `allow_demo`."""
    text = raw.strip()
    if not re.fullmatch(PHONE_PATTERN, text):
        raise InvalidPhone("Not a phone number.")
    try:
        parsed = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone("Not a phone number.") from exc
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if allow_demo and is_demo_phone(e164):
        return str(e164)
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone("Not a valid phone number.")
    if phonenumbers.number_type(parsed) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise InvalidPhone("A mobile phone number is needed to receive codes.")
    return str(e164)


def mask_phone(e164: str) -> str:
    """`138****0000`: the national number with its middle hidden."""
    national = e164[3:] if e164.startswith("+86") else e164.lstrip("+")
    if len(national) <= 7:
        return "*" * len(national)
    return f"{national[:3]}****{national[-4:]}"
