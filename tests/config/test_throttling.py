"""The API's rate limits while the cache (Redis) is unreachable: requests go through uncounted instead of every
one answering 500, so staff can still queue replies during a Redis outage."""

import pytest

from tests.e2e.conftest import free_port

pytestmark = pytest.mark.django_db


def test_with_the_cache_unreachable_the_api_still_answers(api, settings, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    assert api.get("/api/conversations/").status_code == 200
    assert "rate limit not counted: the cache is unreachable" in caplog.text
