"""Writing questions: create a draft, edit it (fully while a draft; its wording, placement and close
date once opened) and preview it as readers will see it, in its place in the article."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from forecasting import services
from forecasting.forms import QuestionForm
from forecasting.models import Article, Question

from .articles import split_paragraphs
from .editor import add_service_errors
from .questions import question_cards

# The fields of QuestionForm that question_update takes (the article is fixed once a question exists).
EDIT_FIELDS = (
    "title",
    "resolution_criteria",
    "fine_print",
    "resolution_source",
    "question_type",
    "options",
    "opens_at",
    "closes_at",
    "paragraph",
)


def _options(data: dict) -> list[str]:
    return data["options"].splitlines() if data["question_type"] == Question.Type.MULTIPLE_CHOICE else []


@login_required
@permission_required("forecasting.add_question", raise_exception=True)
@require_http_methods(["GET", "HEAD", "POST"])
def editor_question_create(request: HttpRequest) -> HttpResponse:
    wanted = request.GET.get("article", "")
    article = Article.objects.filter(pk=int(wanted)).first() if wanted.isdigit() else None
    paragraphs = split_paragraphs(article.body) if article else None
    form = QuestionForm(
        request.POST or None, initial={"article": article.pk if article else None}, paragraphs=paragraphs
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            question = services.question_create(
                actor=request.user,
                article=data["article"],
                title=data["title"],
                resolution_criteria=data["resolution_criteria"],
                fine_print=data["fine_print"],
                resolution_source=data["resolution_source"],
                question_type=data["question_type"],
                options=_options(data),
                opens_at=data["opens_at"],
                closes_at=data["closes_at"],
                paragraph=data["paragraph"],
                **form.service_fields(),
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Draft created. Preview it, then open it when it is ready for readers.")
            return redirect("editor_question_preview", pk=question.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "editor/question_form.html", {"form": form, "question": None}, status=status)


@login_required
@permission_required("forecasting.change_question", raise_exception=True)
@require_http_methods(["GET", "HEAD", "POST"])
def editor_question_edit(request: HttpRequest, pk: int) -> HttpResponse:
    question = get_object_or_404(Question.objects.select_related("article").prefetch_related("options"), pk=pk)
    form = QuestionForm(
        request.POST or None,
        initial=QuestionForm.initial_for(question),
        paragraphs=split_paragraphs(question.article.body),
        question=question,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        # Disabled fields (fixed once opened) post nothing: the service keeps their values.
        fields = {name: data[name] for name in EDIT_FIELDS if not form.fields[name].disabled}
        # a numeric or date question's range (dates as epoch seconds): fixed once opened, its unit is not
        fields |= {name: value for name, value in form.service_fields().items() if not form.fields[name].disabled}
        if "options" in fields:
            fields["options"] = _options(data)
        try:
            services.question_update(question=question, actor=request.user, **fields)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Saved.")
            target = "editor_question_preview" if question.status == Question.Status.DRAFT else "question_detail"
            return redirect(target, pk=question.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "editor/question_form.html", {"form": form, "question": question}, status=status)


@require_safe
@login_required
@permission_required("forecasting.change_question", raise_exception=True)
def editor_question_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The question as readers will see it (even a draft): its page's facts and how it resolves, and its
    card in the article between the paragraphs around it."""
    question = get_object_or_404(Question.objects.select_related("article").prefetch_related("options"), pk=pk)
    paragraphs = split_paragraphs(question.article.body)
    (card,) = question_cards(request, [question])
    card.pop("form", None)  # a preview takes no forecasts
    at = question.paragraph if question.paragraph and question.paragraph <= len(paragraphs) else len(paragraphs)
    context = {
        "question": question,
        "article": question.article,
        "card": card,
        # the paragraph before the card and the one after it, numbered as in the article
        "before": (at, paragraphs[at - 1]) if at else None,
        "after": (at + 1, paragraphs[at]) if at < len(paragraphs) else None,
        "at_end": not question.paragraph or question.paragraph > len(paragraphs),
        "paragraph_count": len(paragraphs),
    }
    return render(request, "editor/question_preview.html", context)
