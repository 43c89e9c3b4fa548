"""Test data factories, all in one place."""

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth.models import Group, User
from django.utils import timezone

from forecasting import services as forecasting_services
from forecasting.models import Article, Prediction, Question, QuestionOption
from forecasting.roles import ANALYSTS, EDITORS


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"reader{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        if create and extracted:
            for name in extracted:
                self.groups.add(Group.objects.get(name=name))
        if create:
            self.save()


def editor_user(**kwargs) -> User:
    return UserFactory(groups=[EDITORS], **kwargs)


def analyst_user(**kwargs) -> User:
    return UserFactory(groups=[ANALYSTS], **kwargs)


class ArticleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Article

    slug = factory.Sequence(lambda n: f"article-{n}")
    title = factory.Sequence(lambda n: f"Article {n}")
    byline = "A. Reporter"
    published_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=2))
    body = "Body text."


class QuestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Question

    article = factory.SubFactory(ArticleFactory)
    title = factory.Sequence(lambda n: f"Will event {n} happen?")
    resolution_criteria = "Resolves YES if it happens."
    question_type = Question.Type.BINARY
    opens_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    closes_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=30))
    status = Question.Status.OPEN
    # A question made past draft has been opened, so it is published; a draft is not.
    published_at = factory.LazyAttribute(lambda o: None if o.status == Question.Status.DRAFT else o.opens_at)


def multiple_choice_question(labels=("Red", "Green", "Blue"), **kwargs) -> Question:
    question = QuestionFactory(question_type=Question.Type.MULTIPLE_CHOICE, **kwargs)
    for i, label in enumerate(labels):
        QuestionOption.objects.create(question=question, position=i, label=label)
    return question


def numeric_question(range_min=0.0, range_max=100.0, *, open_lower=False, open_upper=True, **kwargs) -> Question:
    """A numeric question on a linear scale (``zero_point=`` for a log scale)."""
    return QuestionFactory(
        question_type=Question.Type.NUMERIC,
        range_min=range_min,
        range_max=range_max,
        open_lower_bound=open_lower,
        open_upper_bound=open_upper,
        **kwargs,
    )


def date_question(first: dt.datetime, last: dt.datetime, *, open_upper=True, **kwargs) -> Question:
    """A date question over [first, last] (stored as epoch seconds)."""
    return QuestionFactory(
        question_type=Question.Type.DATE,
        range_min=first.timestamp(),
        range_max=last.timestamp(),
        open_upper_bound=open_upper,
        **kwargs,
    )


class PredictionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prediction

    question = factory.SubFactory(QuestionFactory)
    forecaster = factory.SubFactory(UserFactory)
    probability = Decimal("0.5")


class CommentFactory(factory.django.DjangoModelFactory):
    """A comment written straight to the table (tests of reads); tests of writing go through the services."""

    class Meta:
        model = "comments.Comment"

    question = factory.SubFactory(QuestionFactory)
    author = factory.SubFactory(UserFactory)
    body = factory.Sequence(lambda n: f"Comment number {n}.")


def resolved_history(editor, n_questions=12, skilled=None, unskilled=None):
    """Questions where one forecaster is right and another is a coin flip."""
    skilled = skilled or UserFactory(username="sharp")
    unskilled = unskilled or UserFactory(username="noisy")
    start = timezone.now() - dt.timedelta(days=60)
    for i in range(n_questions):
        yes = i % 2 == 0
        q = QuestionFactory(opens_at=start, closes_at=timezone.now() + dt.timedelta(days=1))
        forecasting_services.prediction_create(
            question=q,
            forecaster=skilled,
            probability=Decimal("0.85" if yes else "0.15"),
            now=start + dt.timedelta(days=i + 1),
        )
        forecasting_services.prediction_create(
            question=q,
            forecaster=unskilled,
            probability=Decimal("0.3" if yes else "0.7"),
            now=start + dt.timedelta(days=i + 1, hours=1),
        )
        forecasting_services.question_resolve(question=q, actor=editor, outcome="yes" if yes else "no")
    return skilled, unskilled
