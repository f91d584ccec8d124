"""The rate card admins load (``manage.py load_rate_card``): every line checked, then all saved in one transaction
or none, so a bad line never leaves half a card."""

import csv
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TextIO

import phonenumbers
from django.db import transaction

from conversations.models import RateCardEntry

RATE_CARD_COLUMNS = ["country", "category", "price", "currency", "valid_from", "valid_to"]
RATE_CARD_CATEGORIES = {"marketing", "utility", "authentication", "authentication_international", "service"}


class RateCardInvalid(ValueError):
    def __init__(self, line: int, field: str, detail: str):
        self.line, self.field, self.detail = line, field, detail
        super().__init__(f"line {line}, {field}: {detail}")


def _market(value: str, line: int) -> str:
    value = value.strip()
    if value.upper() in phonenumbers.SUPPORTED_REGIONS:
        return value.upper()
    digits = value.removeprefix("+")
    if digits.isdigit() and int(digits) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        return f"+{int(digits)}"
    raise RateCardInvalid(line, "country", f"{value!r} is neither an ISO 3166 country nor a calling code.")


def _date(value: str, line: int, field: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise RateCardInvalid(line, field, f"{value!r} is not a date (YYYY-MM-DD).") from None


def _entry(row: dict, line: int) -> RateCardEntry:
    category = (row.get("category") or "").strip().lower()
    if category not in RATE_CARD_CATEGORIES:
        raise RateCardInvalid(
            line, "category", f"{category!r} is not one of {', '.join(sorted(RATE_CARD_CATEGORIES))}."
        )
    try:
        price = Decimal((row.get("price") or "").strip())
    except InvalidOperation:
        price = None
    if price is None or not price.is_finite() or price < 0 or price.as_tuple().exponent < -6:
        raise RateCardInvalid(line, "price", f"{row.get('price')!r} is not a price (0 or more, 6 decimals at most).")
    currency = (row.get("currency") or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise RateCardInvalid(line, "currency", f"{currency!r} is not a 3-letter currency code.")
    valid_from = _date(row.get("valid_from") or "", line, "valid_from")
    valid_to = (row.get("valid_to") or "").strip()
    valid_until = _date(valid_to, line, "valid_to") if valid_to else None
    if valid_until is not None and valid_until <= valid_from:
        raise RateCardInvalid(line, "valid_to", "It must come after valid_from.")
    return RateCardEntry(
        market=_market(row.get("country") or "", line),
        category=category,
        price=price,
        currency=currency,
        valid_from=valid_from,
        valid_until=valid_until,
    )


def load_rate_card(*, source: TextIO) -> int:
    """Every line of the CSV as a rate (a line of the same country, category and start replaces it); the number of
    lines loaded. ``RateCardInvalid`` names the first bad line and field, and nothing is saved."""
    reader = csv.DictReader(source)
    missing = [c for c in RATE_CARD_COLUMNS[:5] if c not in (reader.fieldnames or [])]
    if missing:
        raise RateCardInvalid(1, missing[0], "This column is missing from the header.")
    entries = [_entry(row, line) for line, row in enumerate(reader, start=2)]
    with transaction.atomic():
        for entry in entries:
            RateCardEntry.objects.update_or_create(
                market=entry.market,
                category=entry.category,
                valid_from=entry.valid_from,
                defaults={"price": entry.price, "currency": entry.currency, "valid_until": entry.valid_until},
            )
    return len(entries)
