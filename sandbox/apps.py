from django.apps import AppConfig


class MetaSandboxAppConfig(AppConfig):
    name = "sandbox"
    verbose_name = "Meta sandbox"
