"""The URL map: the inbox pages, login, admin, the REST API, the Meta webhook."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.sign_in import sign_in_limited
from config.api import TokenObtainApi, TokenRefreshApi
from config.middleware import API_DOCS_CONTENT_SECURITY_POLICY, content_security_policy
from conversations.apis import (
    ContactDetailApi,
    ContactListApi,
    ContactMergeApi,
    ConversationCountsApi,
    ConversationDetailApi,
    ConversationListApi,
    ConversationMessagesApi,
    ConversationReadApi,
    ConversationTemplateListApi,
    MessageDecisionApi,
    NumberListApi,
    UnreadTotalApi,
)
from conversations.canned_reply_views import canned_replies_view
from conversations.contact_apis import ContactNoteApi, ContactNotesApi, ContactPanelApi
from conversations.cost_apis import NumberCostsApi
from conversations.cost_views import number_costs_view
from conversations.label_apis import (
    CannedRepliesApi,
    CannedReplyApi,
    ConversationCannedRepliesApi,
    ConversationCannedReplyApi,
    ConversationLabelApi,
    ConversationLabelsApi,
    NumberLabelsApi,
)
from conversations.marketing_apis import ConversationMarketingApi
from conversations.note_apis import (
    ConversationMentionableApi,
    ConversationNotesApi,
    NotificationListApi,
    NotificationReadAllApi,
    NotificationReadApi,
    NotificationUnreadCountApi,
)
from conversations.number_apis import NumberHealthApi
from conversations.search_apis import MessageSearchApi
from conversations.template_apis import NumberTemplateApi, NumberTemplatesApi
from conversations.views import media_file_view, number_templates_view, numbers_view
from conversations.workflow_apis import (
    ConversationActivityApi,
    ConversationAssigneeApi,
    ConversationHandBackApi,
    ConversationStatusApi,
    ConversationTakeApi,
    NumberAwayApi,
    NumberMembersApi,
    NumberSettingsApi,
)
from ops import health
from webhooks.apis import WhatsAppWebhookApi

api_patterns = [
    path("api/webhook", WhatsAppWebhookApi.as_view(), name="webhook"),
    path("api/auth/token/", TokenObtainApi.as_view(), name="token_obtain"),
    path("api/auth/token/refresh/", TokenRefreshApi.as_view(), name="token_refresh"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/docs/",
        content_security_policy(API_DOCS_CONTENT_SECURITY_POLICY)(SpectacularSwaggerView.as_view(url_name="schema")),
        name="api_docs",
    ),
    path("api/numbers/", NumberListApi.as_view(), name="number_list"),
    path("api/contacts/", ContactListApi.as_view(), name="contact_list"),
    path("api/contacts/<int:contact_id>/", ContactDetailApi.as_view(), name="contact_detail"),
    path("api/contacts/<int:contact_id>/merge/", ContactMergeApi.as_view(), name="contact_merge"),
    path("api/messages/search/", MessageSearchApi.as_view(), name="message_search"),
    path("api/conversations/<int:conversation_id>/contact/", ContactPanelApi.as_view(), name="conversation_contact"),
    path(
        "api/conversations/<int:conversation_id>/marketing/",
        ConversationMarketingApi.as_view(),
        name="conversation_marketing",
    ),
    path(
        "api/conversations/<int:conversation_id>/contact/notes/",
        ContactNotesApi.as_view(),
        name="conversation_contact_notes",
    ),
    path(
        "api/conversations/<int:conversation_id>/contact/notes/<int:note_id>/",
        ContactNoteApi.as_view(),
        name="conversation_contact_note",
    ),
    path("api/conversations/", ConversationListApi.as_view(), name="conversation_list"),
    path("api/conversations/unread-total/", UnreadTotalApi.as_view(), name="unread_total"),
    path("api/conversations/counts/", ConversationCountsApi.as_view(), name="conversation_counts"),
    path("api/conversations/<int:conversation_id>/", ConversationDetailApi.as_view(), name="conversation_detail"),
    path(
        "api/conversations/<int:conversation_id>/messages/",
        ConversationMessagesApi.as_view(),
        name="conversation_messages",
    ),
    path(
        "api/conversations/<int:conversation_id>/messages/<int:message_id>/decision/",
        MessageDecisionApi.as_view(),
        name="message_decision",
    ),
    path("api/conversations/<int:conversation_id>/read/", ConversationReadApi.as_view(), name="conversation_read"),
    path(
        "api/conversations/<int:conversation_id>/status/", ConversationStatusApi.as_view(), name="conversation_status"
    ),
    path(
        "api/conversations/<int:conversation_id>/assignee/",
        ConversationAssigneeApi.as_view(),
        name="conversation_assignee",
    ),
    path("api/conversations/<int:conversation_id>/take/", ConversationTakeApi.as_view(), name="conversation_take"),
    path(
        "api/conversations/<int:conversation_id>/hand-back/",
        ConversationHandBackApi.as_view(),
        name="conversation_hand_back",
    ),
    path(
        "api/conversations/<int:conversation_id>/activity/",
        ConversationActivityApi.as_view(),
        name="conversation_activity",
    ),
    path("api/numbers/<int:number_id>/health/", NumberHealthApi.as_view(), name="number_health"),
    path("api/numbers/<int:number_id>/costs/", NumberCostsApi.as_view(), name="number_costs"),
    path("api/numbers/<int:number_id>/settings/", NumberSettingsApi.as_view(), name="number_settings"),
    path("api/numbers/<int:number_id>/members/", NumberMembersApi.as_view(), name="number_members"),
    path("api/numbers/<int:number_id>/away/", NumberAwayApi.as_view(), name="number_away"),
    path("api/numbers/<int:number_id>/labels/", NumberLabelsApi.as_view(), name="number_labels"),
    path("api/numbers/<int:number_id>/templates/", NumberTemplatesApi.as_view(), name="number_templates"),
    path(
        "api/numbers/<int:number_id>/templates/<int:template_id>/",
        NumberTemplateApi.as_view(),
        name="number_template",
    ),
    path(
        "api/conversations/<int:conversation_id>/labels/", ConversationLabelsApi.as_view(), name="conversation_labels"
    ),
    path(
        "api/conversations/<int:conversation_id>/labels/<int:label_id>/",
        ConversationLabelApi.as_view(),
        name="conversation_label",
    ),
    path(
        "api/conversations/<int:conversation_id>/canned-replies/",
        ConversationCannedRepliesApi.as_view(),
        name="conversation_canned_replies",
    ),
    path(
        "api/conversations/<int:conversation_id>/canned-replies/<int:canned_reply_id>/",
        ConversationCannedReplyApi.as_view(),
        name="conversation_canned_reply",
    ),
    path("api/canned-replies/", CannedRepliesApi.as_view(), name="canned_replies"),
    path("api/canned-replies/<int:canned_reply_id>/", CannedReplyApi.as_view(), name="canned_reply"),
    path("api/conversations/<int:conversation_id>/notes/", ConversationNotesApi.as_view(), name="conversation_notes"),
    path(
        "api/conversations/<int:conversation_id>/mentionable/",
        ConversationMentionableApi.as_view(),
        name="conversation_mentionable",
    ),
    path("api/notifications/", NotificationListApi.as_view(), name="notification_list"),
    path("api/notifications/unread-count/", NotificationUnreadCountApi.as_view(), name="notification_unread_count"),
    path("api/notifications/read-all/", NotificationReadAllApi.as_view(), name="notification_read_all"),
    path("api/notifications/<int:notification_id>/read/", NotificationReadApi.as_view(), name="notification_read"),
    path(
        "api/conversations/<int:conversation_id>/templates/",
        ConversationTemplateListApi.as_view(),
        name="conversation_templates",
    ),
]

urlpatterns = [
    # Before admin.site.urls: the admin's sign-in form takes the same limit as the inbox's (accounts/sign_in.py).
    path("admin/login/", sign_in_limited(admin.site.login)),
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(pattern_name="inbox:list", permanent=False)),
    path("login/", sign_in_limited(auth_views.LoginView.as_view(redirect_authenticated_user=True)), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("inbox/", include("conversations.urls")),
    path("numbers/", numbers_view, name="numbers"),
    path("canned-replies/", canned_replies_view, name="canned_replies_page"),
    path("numbers/<int:number_id>/costs/", number_costs_view, name="number_costs_page"),
    path("numbers/<int:number_id>/templates/", number_templates_view, name="number_templates_page"),
    path("media/<int:message_id>/", media_file_view, name="media_file"),
    *api_patterns,
]

handler404 = "config.api.json_or_html_404"
handler500 = "config.api.json_or_html_500"

# Probes for load balancers and Prometheus (ops/health.py); outside /api/ so nginx can keep them internal.
urlpatterns += [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
]
