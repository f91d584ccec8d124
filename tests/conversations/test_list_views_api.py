"""The conversation list's views (mine, unassigned, all), status and assignee in the API, and the counts per view."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_api_list_and_counts_filter_the_same_way(api, staff, ben, team_conversations):
    def ids(query: str) -> list[int]:
        return [c["id"] for c in api.get(f"/api/conversations/?{query}").json()["results"]]

    assert ids("view=mine") == [team_conversations["mine"].pk]
    assert ids("view=unassigned") == [
        team_conversations["unassigned"].pk,
        team_conversations["resolved"].pk,
    ]  # any status
    assert ids("view=unassigned&status=open") == [team_conversations["unassigned"].pk]
    assert ids(f"assignee={ben.pk}&status=open") == [team_conversations["bens"].pk]
    assert api.get("/api/conversations/counts/?status=open").json() == {"mine": 1, "unassigned": 1, "all": 3}
    assert api.get("/api/conversations/counts/").json() == {"mine": 1, "unassigned": 2, "all": 4}
    assert api.get("/api/conversations/counts/?number=999").json() == {"mine": 0, "unassigned": 0, "all": 0}
