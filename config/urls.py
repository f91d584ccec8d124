"""The URL map: the inbox pages, login, admin, the REST API, the Meta webhook."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from conversations.apis import (
    ConversationListApi,
    ConversationMessagesApi,
    ConversationReadApi,
    ConversationTemplateListApi,
)
from conversations.views import media_file_view
from webhooks.apis import WhatsAppWebhookApi

api_patterns = [
    path("api/webhook", WhatsAppWebhookApi.as_view(), name="webhook"),
    path("api/auth/token/", TokenObtainPairView.as_view(), name="token_obtain"),
    path("api/auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("api/conversations/", ConversationListApi.as_view(), name="conversation_list"),
    path(
        "api/conversations/<int:conversation_id>/messages/",
        ConversationMessagesApi.as_view(),
        name="conversation_messages",
    ),
    path("api/conversations/<int:conversation_id>/read/", ConversationReadApi.as_view(), name="conversation_read"),
    path(
        "api/conversations/<int:conversation_id>/templates/",
        ConversationTemplateListApi.as_view(),
        name="conversation_templates",
    ),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(pattern_name="inbox:list", permanent=False)),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("inbox/", include("conversations.urls")),
    path("media/<int:message_id>/", media_file_view, name="media_file"),
    *api_patterns,
]
