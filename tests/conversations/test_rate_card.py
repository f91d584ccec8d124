from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from conversations.models import RateCardEntry

pytestmark = pytest.mark.django_db

HEADER = "country,category,price,currency,valid_from,valid_to\n"


def load(tmp_path, body):
    path = tmp_path / "rates.csv"
    path.write_text(HEADER + body)
    call_command("load_rate_card", str(path))


def test_a_good_card_is_loaded_by_country_or_calling_code(tmp_path):
    load(tmp_path, "BR,marketing,0.0625,USD,2026-01-01,\n+44,Utility,0.02,usd,2026-01-01,2026-07-01\n")
    rows = {(r.market, r.category): r for r in RateCardEntry.objects.all()}
    assert rows["BR", "marketing"].price == Decimal("0.0625")
    assert rows["BR", "marketing"].valid_until is None
    assert rows["+44", "utility"].currency == "USD"
    assert str(rows["+44", "utility"].valid_until) == "2026-07-01"


def test_loading_again_replaces_the_same_start(tmp_path):
    load(tmp_path, "BR,marketing,0.06,USD,2026-01-01,\n")
    load(tmp_path, "BR,marketing,0.07,USD,2026-01-01,\n")
    assert list(RateCardEntry.objects.values_list("price", flat=True)) == [Decimal("0.07")]


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("ZZ,marketing,0.06,USD,2026-01-01,", "country"),
        ("+999,marketing,0.06,USD,2026-01-01,", "country"),
        ("BR,promotions,0.06,USD,2026-01-01,", "category"),
        ("BR,marketing,cheap,USD,2026-01-01,", "price"),
        ("BR,marketing,-1,USD,2026-01-01,", "price"),
        ("BR,marketing,0.06,USD,2026-13-01,", "valid_from"),
        ("BR,marketing,0.06,USD,2026-02-01,2026-01-01", "valid_to"),
    ],
)
def test_a_bad_line_is_named_and_nothing_is_saved(tmp_path, line, field):
    with pytest.raises(CommandError) as refused:
        load(tmp_path, "IN,utility,0.01,USD,2026-01-01,\n" + line + "\n")
    assert f"line 3, {field}:" in str(refused.value)
    assert not RateCardEntry.objects.exists()


def test_a_missing_column_is_named(tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text("country,category,price,valid_from\nBR,marketing,0.06,2026-01-01\n")
    with pytest.raises(CommandError, match="line 1, currency"):
        call_command("load_rate_card", str(path))
