from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operating the deployment: probes, metrics, structured logs, and the operator's reports across the apps
    (``check_meta``, ``inbox_stats``)."""

    name = "ops"
    verbose_name = "Operations"
