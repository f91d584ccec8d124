"""The project itself as a Django app: start-up work that belongs to no domain app."""

from django.apps import AppConfig


class ProjectConfig(AppConfig):
    name = "config"
    verbose_name = "Project"

    def ready(self):
        from config.celery import app
        from database.bulk import install_any_lookup
        from database.pgbouncer import explain_pooler_errors
        from database.replica import warn_if_replica_unreachable

        install_any_lookup()
        explain_pooler_errors()  # before anything connects
        warn_if_replica_unreachable()
        # Every app's tasks registered in every process, so that services can enqueue them by name
        # (a worker does this when it starts; a web process would otherwise know none of them).
        app.autodiscover_tasks(force=True)
