"""Beat's housekeeping: refresh tokens past their expiry are deleted every day, with their blacklist rows."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from ops.tasks import flush_expired_tokens_task
from tests.factories import UserFactory


def test_beat_deletes_expired_refresh_tokens_daily_and_keeps_live_ones(db):
    user = UserFactory()
    live = RefreshToken.for_user(user)
    expired = RefreshToken.for_user(user)
    expired.blacklist()
    OutstandingToken.objects.filter(jti=expired["jti"]).update(expires_at=timezone.now() - timedelta(seconds=1))

    flush_expired_tokens_task.delay()
    flush_expired_tokens_task.delay()  # a second beat's run changes nothing more

    assert list(OutstandingToken.objects.values_list("jti", flat=True)) == [live["jti"]]
    assert not BlacklistedToken.objects.exists()
    schedule = settings.CELERY_BEAT_SCHEDULE["flush-expired-tokens"]
    assert (schedule["task"], schedule["schedule"]) == (flush_expired_tokens_task.name, 24 * 3600)
