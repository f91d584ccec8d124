"""The contacts API: list and search (name, or phone in any format), rename, merge duplicates."""
from django.http import Http404
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView

from config.api import error_response
from config.openapi import CURSOR_PARAMETERS, ContactDetailOut, ErrorOut, cursor_page
from contacts import selectors, services
from conversations.snapshots import contact_snapshot


class ContactCursor(CursorPagination):
    ordering = ("-updated_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def _contact_or_404(request, contact_id: int):
    contact = selectors.contact_for_user(user=request.user, contact_id=contact_id)
    if contact is None:
        raise Http404
    return contact


def _refused(refusal: services.ContactChangeForbidden):
    return error_response(status=403, code=refusal.code, detail=refusal.detail)


def contact_item(contact) -> dict:
    return {**contact_snapshot(contact), "profile_name": contact.profile_name, "custom_name": contact.custom_name or None}


class ContactListApi(APIView):
    """``GET /api/contacts/?q=<name or phone>``: contacts of the numbers you may see."""

    @extend_schema(
        operation_id="contacts_list",
        parameters=[OpenApiParameter("q", str, description="name, username or phone in any format"), *CURSOR_PARAMETERS],
        # 404: an invalid cursor
        responses={200: cursor_page("ContactPage", ContactDetailOut), 401: ErrorOut, 404: ErrorOut},
    )
    def get(self, request):
        contacts = selectors.contact_list(user=request.user, search=request.query_params.get("q", ""))
        paginator = ContactCursor()
        page = paginator.paginate_queryset(contacts, request, view=self)
        return paginator.get_paginated_response([contact_item(c) for c in page])


class ContactDetailApi(APIView):
    """``GET`` one contact; ``PATCH {"name": "..."}`` renames it (an empty name returns to the WhatsApp name):
    403 unless you may see every number the contact talks to."""

    class RenameInput(serializers.Serializer):
        name = serializers.CharField(allow_blank=True, max_length=256)

    @extend_schema(responses={200: ContactDetailOut, 401: ErrorOut, 404: ErrorOut})
    def get(self, request, contact_id: int):
        return Response(contact_item(_contact_or_404(request, contact_id)))

    @extend_schema(
        request=RenameInput, responses={200: ContactDetailOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut}
    )
    def patch(self, request, contact_id: int):
        contact = _contact_or_404(request, contact_id)
        data = self.RenameInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            renamed = services.rename_contact(contact=contact, name=data.validated_data["name"], user=request.user)
        except services.ContactChangeForbidden as refusal:
            return _refused(refusal)
        return Response(contact_item(renamed))


class ContactMergeApi(APIView):
    """``POST /api/contacts/<id>/merge/ {"duplicate": <id>}``: the duplicate's conversations and messages
    move to this contact, and the duplicate is deleted. 403 unless you may see every number either talks to."""

    class MergeInput(serializers.Serializer):
        duplicate = serializers.IntegerField()

    @extend_schema(
        request=MergeInput, responses={200: ContactDetailOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut}
    )
    def post(self, request, contact_id: int):
        keep = _contact_or_404(request, contact_id)
        data = self.MergeInput(data=request.data)
        data.is_valid(raise_exception=True)
        duplicate = _contact_or_404(request, data.validated_data["duplicate"])
        if duplicate.pk == keep.pk:
            return error_response(status=400, code="same_contact", detail="A contact cannot be merged into itself.")
        try:
            merge = services.merge_contacts(keep=keep, duplicate=duplicate, user=request.user)
        except services.ContactChangeForbidden as refusal:
            return _refused(refusal)
        return Response(contact_item(merge.keep))
