"""Every HTML page carries a Content-Security-Policy that allows the app's own files only."""

import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _directives(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in (p.strip() for p in policy.split(";")) if part}


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_sign_in_pages_allow_only_their_own_scripts_and_styles(client, path):
    directives = _directives(client.get(path))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"


def test_the_inbox_allows_its_own_socket_and_media(client, staff):
    client.force_login(staff)
    directives = _directives(client.get("/inbox/"))
    assert directives["connect-src"] == "'self'"
    assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]
    assert directives["media-src"].startswith("'self'")


def test_the_api_docs_keep_their_own_policy_for_swagger_uis_inline_start(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert _directives(response)["script-src"] == "'self' 'unsafe-inline'"
    assert _directives(response)["frame-ancestors"] == "'none'"


def test_json_answers_carry_no_page_policy(api):
    assert "Content-Security-Policy" not in api.get("/api/numbers/")
