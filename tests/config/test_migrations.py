"""The migrations describe the models: a model change committed without its migration fails here, not on the
first deploy that runs ``migrate``."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_lacks_a_migration():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)  # exits non-zero on a missing migration
