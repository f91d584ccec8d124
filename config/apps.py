"""The project itself as a Django app: start-up work that belongs to no domain app."""
from django.apps import AppConfig


class ProjectConfig(AppConfig):
    name = "config"
    verbose_name = "Project"

    def ready(self):
        from database.bulk import install_any_lookup, install_psycopg_adapters

        install_psycopg_adapters()
        install_any_lookup()
