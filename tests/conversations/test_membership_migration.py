"""The member list becomes memberships with a role: the members a number had before the migration are its
members after it, every one an agent with the default limit."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("conversations", "0005_outbound_recovery")]


@pytest.mark.django_db(transaction=True)
def test_the_members_a_number_had_are_kept_as_agents():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    number = old.get_model("conversations", "BusinessNumber").objects.create(
        phone_number_id="106540352249999", display_phone_number="15550789999"
    )
    user = old.get_model("auth", "User").objects.create(username="kept")
    number.members.add(user)

    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    new = executor.loader.project_state(latest).apps
    membership = new.get_model("conversations", "NumberMembership").objects.get(number_id=number.pk)
    assert (membership.user_id, membership.role, membership.max_open, membership.away) == (user.pk, "agent", 10, False)
    number = new.get_model("conversations", "BusinessNumber").objects.get(pk=number.pk)
    assert list(number.members.values_list("username", flat=True)) == ["kept"]
