"""Meta sends only the webhook fields the app subscribed to in the App Dashboard: the operator's setup guide names
every field the app applies, so none is left out unnoticed (its news would never arrive, and nothing would say so)."""

from django.conf import settings

from conversations.account_events import ACCOUNT_FIELDS
from webhooks.payloads import PHONE_APP_FIELDS
from webhooks.services import PROCESSED_FIELDS


def test_the_setup_guide_names_every_webhook_field_the_app_applies():
    guide = (settings.BASE_DIR / "docs" / "operations.md").read_text()
    setup = guide.split("## Meta webhook setup", 1)[1].split("\n## ", 1)[0]
    applied = {*PROCESSED_FIELDS, *ACCOUNT_FIELDS, *PHONE_APP_FIELDS}
    assert sorted(field for field in applied if f"`{field}`" not in setup) == []
