"""JWTs end with what they stand for: each refresh token works once (refreshing rotates it), and a password change
or a deactivated account revokes every access and refresh token issued before."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def obtain(username="ana", password="pw-for-tests") -> dict:
    response = APIClient().post("/api/auth/token/", {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def refresh(token: str):
    return APIClient().post("/api/auth/token/refresh/", {"refresh": token}, format="json")


def conversations(access: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.get("/api/conversations/")


def test_refreshing_hands_out_a_new_refresh_token_and_revokes_the_old_one(staff):
    tokens = obtain()
    refreshed = refresh(tokens["refresh"])
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["refresh"] != tokens["refresh"] and conversations(new["access"]).status_code == 200
    replayed = refresh(tokens["refresh"])
    assert replayed.status_code == 401
    assert replayed.json()["error"] == {"code": "token_not_valid", "detail": "Token is blacklisted"}
    assert refresh(new["refresh"]).status_code == 200


def test_a_password_change_revokes_access_and_refresh_tokens(staff):
    tokens = obtain()
    assert conversations(tokens["access"]).status_code == 200
    staff.set_password("a-new-password-4417")
    staff.save()
    for response in (conversations(tokens["access"]), refresh(tokens["refresh"])):
        assert response.status_code == 401
        assert response.json()["error"] == {
            "code": "password_changed",
            "detail": "The user's password has been changed.",
        }
    assert conversations(obtain(password="a-new-password-4417")["access"]).status_code == 200


def test_deactivation_revokes_access_and_refresh_tokens(staff):
    tokens = obtain()
    staff.is_active = False
    staff.save()
    for response in (conversations(tokens["access"]), refresh(tokens["refresh"])):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "user_inactive"


def test_the_refresh_token_of_a_deleted_user_is_refused(staff):
    tokens = obtain()
    staff.delete()
    response = refresh(tokens["refresh"])
    assert response.status_code == 401 and response.json()["error"]["code"] == "user_not_found"
