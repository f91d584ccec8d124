"""WSGI entry point: pages, admin, API and the webhook in production (gunicorn)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup(set_prefix=False)  # what django.core.wsgi.get_wsgi_application() does, with the project's handler

from webhooks.fastpath import InboxWSGIHandler

application = InboxWSGIHandler()

# Django imports the URL map, and with it every view, DRF and the schema code, on the first request a
# process serves, and the webhook's first drain request imports the Celery tasks and kombu's transport:
# 130-230 ms on the first webhook of every new gunicorn worker (each deploy, and each worker recycled after
# WEB_MAX_REQUESTS), and the deliveries behind it queued. A worker does that while it boots, before it
# accepts connections. Nothing here connects: the pools open their connections on first use, after the fork.
from django.urls import get_resolver

from config.celery import prepare_producer
from ops.heap import freeze_startup_objects

get_resolver().url_patterns  # noqa: B018
prepare_producer()
freeze_startup_objects()
