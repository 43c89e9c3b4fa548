"""The comments' API endpoints; ``webapp/api/urls.py`` mounts them under ``/api/v1/`` in the ``api`` namespace."""

from django.urls import path

from . import views

urlpatterns = [
    path("questions/<int:pk>/comments/", views.QuestionComments.as_view(), name="question-comments"),
]
