"""The comments' API: a question's discussion, and posting to it. Thin: validate, call one service."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import NotAuthenticated, Throttled, ValidationError
from rest_framework.response import Response

from comments import services
from comments.models import Comment
from comments.ratelimit import MESSAGE, comment_retry_after
from forecasting.api.base import PUBLIC_READ, ApiView, validated
from forecasting.api.permissions import visible_question_or_404

from . import serializers as s


@extend_schema_view(
    get=extend_schema(
        tags=["comments"],
        summary="A question's discussion",
        description="Top-level comments (`sort`: `newest` first, or `top` by votes), each with its replies, oldest "
        "first, and the author's forecast when they wrote it. Hidden comments (and replies under them) are left out, "
        "except for editors, who also see `is_hidden` and the reason. Public for visible questions.",
        parameters=[
            OpenApiParameter("sort", OpenApiTypes.STR, enum=list(services.SORTS), description="Default `newest`.")
        ],
        responses={200: s.ThreadSerializer(many=True)},
    ),
    post=extend_schema(
        tags=["comments"],
        summary="Comment on a question, or reply",
        description="Signed-in readers, while the question is open, closed or resolved. A reply to a reply joins "
        "its top-level comment's thread. Rate-limited per account and per address (429 with `Retry-After`).",
        request=s.CommentCreateSerializer,
        responses={201: s.CommentSerializer},
    ),
)
class QuestionComments(ApiView, generics.GenericAPIView):
    queryset = Comment.objects.none()
    serializer_class = s.ThreadSerializer
    filter_backends = []
    error_codes = {"GET": PUBLIC_READ, "POST": (400, 401, 404, 429)}

    def get(self, request, pk: int):
        question = visible_question_or_404(request, pk)
        discussion = services.discussion(
            question=question, viewer=request.user, sort=request.query_params.get("sort") or ""
        )
        page = self.paginate_queryset([thread.comment for thread in discussion.threads])
        context = {
            **self.get_serializer_context(),
            "replies": {thread.comment.pk: thread.replies for thread in discussion.threads},
            "moderator": discussion.moderator,
        }
        serializer_class = s.ModeratedThreadSerializer if discussion.moderator else s.ThreadSerializer
        return self.get_paginated_response(serializer_class(page, many=True, context=context).data)

    def post(self, request, pk: int):
        if not request.user.is_authenticated:
            raise NotAuthenticated()
        question = visible_question_or_404(request, pk)
        retry_after = comment_retry_after(request._request, request.user)
        if retry_after is not None:
            raise Throttled(wait=retry_after, detail=f"{MESSAGE} Try again in {retry_after} seconds.")
        data = validated(s.CommentCreateSerializer, request.data)
        parent = None
        if data.get("parent"):
            parent = Comment.objects.filter(pk=data["parent"], question=question).first()
            if parent is None:
                raise ValidationError({"parent": ["No such comment on this question."]})
        comment = services.comment_create(question=question, author=request.user, body=data["body"], parent=parent)
        created = services.comments_with_context(question, request.user).get(pk=comment.pk)
        return Response(s.CommentSerializer(created).data, status=status.HTTP_201_CREATED)
