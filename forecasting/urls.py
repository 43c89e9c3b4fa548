"""Forecasting's HTML pages (included at the site root by webapp/urls.py; names are unnamespaced)."""

from django.urls import path

from .views import (
    accuracy,
    articles,
    authoring,
    charts,
    conditionals,
    continuous,
    desk,
    downloads,
    editor,
    embeds,
    people,
    question_list,
    questions,
)

urlpatterns = [
    path("", articles.home, name="home"),
    path("articles/<slug:slug>/", articles.article_detail, name="article_detail"),
    path("questions/", question_list.question_list, name="question_list"),
    path("questions/<int:pk>/", questions.question_detail, name="question_detail"),
    path("questions/<int:pk>/history.json", charts.question_history, name="question_history"),
    path("questions/<int:pk>/forecast/", questions.forecast_submit, name="forecast_submit"),
    # Numeric and date questions: the shape of a forecast before it is made (a GET: writes nothing).
    path("questions/<int:pk>/forecast/preview/", continuous.forecast_preview, name="forecast_preview"),
    path("questions/<int:pk>/resolve/", editor.question_resolve, name="question_resolve"),
    path("questions/<int:pk>/<slug:action>/", editor.question_action, name="question_action"),
    path("articles/<slug:slug>/leaderboard/", people.leaderboard, name="article_leaderboard"),
    path("leaderboard/", people.leaderboard, name="leaderboard"),
    path("forecasters/<str:username>/", people.track_record, name="track_record"),
    path("me/forecasts/", people.my_forecasts, name="my_forecasts"),
    path("accuracy/", accuracy.accuracy, name="accuracy"),
    # Questions in other pages: an iframe's page, oEmbed (with discovery on question pages), a preview card.
    path("embed/questions/<int:pk>/", embeds.question_embed, name="question_embed"),
    path("oembed", embeds.oembed, name="oembed"),
    path("questions/<int:pk>/card.png", embeds.question_card_image, name="question_card_image"),
    path("me/download/", downloads.download_mine, name="download_mine"),
    path("downloads/", downloads.downloads, name="analyst_downloads"),
    path("downloads/all/", downloads.download_all, name="download_all"),
    path("downloads/articles/<slug:slug>/", downloads.download_article, name="download_article"),
    path("downloads/questions/<int:pk>/", downloads.download_question, name="download_question"),
    path("editor/", desk.editor_dashboard, name="editor_dashboard"),
    path("editor/models/", editor.editor_model_runs, name="editor_model_runs"),
    path("editor/questions/new/", authoring.editor_question_create, name="editor_question_create"),
    path("editor/conditionals/new/", conditionals.editor_conditional_create, name="editor_conditional_create"),
    path("editor/questions/<int:pk>/edit/", authoring.editor_question_edit, name="editor_question_edit"),
    path("editor/questions/<int:pk>/preview/", authoring.editor_question_preview, name="editor_question_preview"),
    path("editor/questions/<int:pk>/resolve/", editor.editor_question_resolve, name="editor_question_resolve"),
    # Annulling and un-resolving: GET asks for the reason and a confirmation, POST does it.
    path("editor/questions/<int:pk>/annul/", editor.editor_question_annul, name="editor_question_annul"),
    path("editor/questions/<int:pk>/unresolve/", editor.editor_question_unresolve, name="editor_question_unresolve"),
]
