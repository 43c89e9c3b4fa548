"""The discussion's endpoints (included at the site root by webapp/urls.py). Two segments after the question, since
forecasting routes ``questions/<pk>/<action>/`` to the editor's actions."""

from django.urls import path

from . import views

urlpatterns = [
    path("questions/<int:pk>/comments/new/", views.comment_post, name="comment_post"),
    path("comments/<int:comment_id>/vote/", views.comment_vote, name="comment_vote"),
    path("comments/<int:comment_id>/hide/", views.comment_hide, name="comment_hide"),
    path("comments/<int:comment_id>/unhide/", views.comment_unhide, name="comment_unhide"),
    path("rationales/<int:prediction_id>/hide/", views.rationale_hide, name="rationale_hide"),
    path("rationales/<int:prediction_id>/unhide/", views.rationale_unhide, name="rationale_unhide"),
]
