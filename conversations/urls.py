"""Inbox page URLs."""

from django.urls import path

from conversations.views import inbox_view

app_name = "inbox"

urlpatterns = [
    path("", inbox_view, name="list"),
    path("<int:conversation_id>/", inbox_view, name="conversation"),
]
