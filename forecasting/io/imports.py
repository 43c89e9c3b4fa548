"""Import resolved forecasts from a flat CSV file (``manage.py import_forecasts``): yes/no questions, or
numeric and date questions.

The file formats
----------------
CSV (UTF-8, optionally gzip-compressed: detected by a ``.gz`` suffix or the gzip magic bytes)
with a header row naming at least the columns of its format, in any order (other columns are
ignored). The header decides the format: a ``cdf`` column means the numeric format, anything else
is the yes/no format.

The yes/no format:

=============  ==========================================================================
question_id    the question's identifier in the source (string, at most 200 characters)
forecaster_id  the forecaster's identifier in the source (string)
made_at        when the forecast was made, ISO 8601 (``2008-06-20T03:46:16Z``; no offset = UTC)
probability    the forecaster's probability of YES, a number in [0, 1]
outcome        how the question resolved: ``1`` (YES) or ``0`` (NO); ``1.0``/``0.0`` also accepted
resolved_at    when the question resolved, ISO 8601
=============  ==========================================================================

The numeric format (numeric and date questions; the one ``manage.py evaluate_aggregators`` reads,
docs/continuous.md): ``question_id``, ``forecaster_id``, ``made_at`` and ``resolved_at`` as above, and

================  =======================================================================
cdf               the forecast: a JSON list of 201 values, value k = P(X <= location k/200 of the
                  question's scaled range) (``forecasting.continuous.grid``)
range_min,        the range; on a date question numbers (epoch seconds) or ISO dates
range_max
open_lower_bound, ``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``t``/``f``): whether the
open_upper_bound  outcome may fall below / above the range
outcome           a number; an ISO date on a date question; or ``below_lower_bound`` /
                  ``above_upper_bound``
zero_point        optional: empty (or no column) for a linear scale, else the zero of a log scale
                  (outside the range; Metaculus's convention, ``continuous.grid.Scale``)
question_type     optional: ``numeric`` or ``date``; when empty, a range, zero point or outcome that
                  is not a number but an ISO date makes a date question
closes_at         optional: when the question closed for forecasts, ISO 8601
================  =======================================================================

What an import creates
----------------------
- One ``Article`` per import target: the slug is ``--article-slug`` or, by default,
  ``imported-<file name without .csv/.gz>`` (slugified); its title is
  ``Imported forecasts: <file name>``, its body notes the source file and the date of the
  import, and it is published at the earliest forecast's ``made_at``. An existing article with
  that slug is reused (that is how a re-import finds what it imported before).
- One resolved ``Question`` per ``question_id``, with ``external_id = question_id``,
  title ``Imported question <question_id>``, resolution criteria naming the source file,
  ``opens_at`` = its earliest imported forecast and ``closes_at`` = ``resolved_at`` (numeric: the
  file's ``closes_at`` when earlier; always one second after ``opens_at`` when not later). A question
  is identified by (article, external_id), which is unique in the database. A yes/no file makes
  yes/no questions; a numeric file makes ``numeric`` or ``date`` questions with the file's
  ``range_min``, ``range_max`` (dates as epoch seconds), ``open_lower_bound``, ``open_upper_bound``
  and ``zero_point``.
- One ``User`` per ``forecaster_id``, in the import's own namespace: the username is
  ``<forecaster_id>@<article slug>`` (``alice@imported-predictionbook``), the user has an unusable
  password and belongs to the group ``Imported forecasters``. An imported id is never matched to a
  site account: only a user of that group with exactly that name is reused (a re-import), and
  rows whose name a site account holds are rejected.
- One ``Prediction`` per accepted row, made at the file's ``made_at``. A probability is
  clipped to [0.01, 0.99] (the range the site allows; the source may contain 0 and 1) and
  rounded to 4 decimals. A CDF that breaks the site's stricter rules for a forecast (a minimum
  step, 0.1% beyond an open bound, 0 and 1 at closed bounds: ``continuous.validate_cdf``) is made
  valid by ``continuous.standardise`` (a valid CDF is kept as it is; the report counts the others),
  then stored rounded to 6 decimals, as a forecast made on the site.
- For each new question: a ``Resolution`` (``yes``/``no``; or ``value`` with the outcome in
  ``value``, and ``below``/``above`` without a value for an outcome beyond an open bound, as the
  site resolves numeric questions), resolved at ``resolved_at``, and a
  ``resolved`` ``QuestionEvent``, both by the system user ``importer`` (inactive, unusable
  password; created on first use; an active ``importer`` or one with a password is a site
  account, and the import stops with an error), with the note ``imported from <file name>``.
- Then every question that was created or received forecasts has its scores recomputed
  (``services.question_scores_recompute_many``: Brier, log, baseline and peer; numeric and date
  questions log, baseline, peer and CRPS) and its aggregate history rebuilt
  (``services.aggregate_history_rebuild_many``), a few queries per 500 questions.

Validation
----------
Rows are checked (``import_rows``, ``import_numeric``) before anything is written. A rejected row is
reported with its line number in the file (the header is line 1) and the reason, and is not imported:

- an empty ``question_id`` or ``forecaster_id`` (or a ``question_id`` over 200 characters);
- a ``forecaster_id`` with characters other than letters, digits and ``@ . + - _`` (Django's
  username rule: the name goes into the public pages' URLs, so no ``/`` or space), or too long
  for a username once the namespace is added (150 characters in all; never cut);
- a ``probability`` that is not a number, is NaN or infinite, or lies outside [0, 1];
- an ``outcome`` other than 0 or 1;
- numeric: a ``cdf`` that is not a JSON list of 201 finite numbers in [0, 1], non-decreasing (both
  to 1e-9), or that no standardisation makes valid (nearly no probability inside closed bounds);
  a range, bound or zero point that does not make a valid scale (``range_min >= range_max``, a
  bound that is not true/false, a zero point inside the range); an ``outcome`` that does not parse
  or lies beyond a closed bound; a ``question_type`` other than numeric or date;
- a ``made_at``, ``resolved_at`` (or ``closes_at``) that is not an ISO 8601 date-time;
- a second row with the same question, forecaster and ``made_at`` ("duplicate of line N");
- an ``outcome`` or ``resolved_at`` (numeric: or type, range, bounds, zero point, ``closes_at``) that
  differs from the first accepted row of the same question ("conflicts with line N");
- a forecast made after the question resolved (numeric: or after its ``closes_at``);
- rows of a question already in the database whose active resolution differs from the file's
  outcome (or that is no longer resolved there), or made after the resolution recorded there
  (numeric: or whose type or range differs there, or made after its close there);
- rows whose namespaced forecaster name belongs to a site account, not an imported forecaster.

Re-importing is idempotent: a forecast already in the database (same question, forecaster and
``made_at``) is counted as "already imported", and existing questions and resolutions are
reused, never duplicated. The whole file is imported in one transaction. ``strict=True`` imports
nothing when any row is rejected; ``dry_run=True`` runs the import and rolls it back.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.text import slugify

from forecasting import jobs, services
from forecasting.models import (
    MAX_PROBABILITY,
    MIN_PROBABILITY,
    Article,
    Prediction,
    Question,
    QuestionEvent,
    Resolution,
)

from .import_numeric import NumericRow, database_conflict, validate_numeric_rows
from .import_rows import (
    MAX_USERNAME_LENGTH,
    NUMERIC,
    ForecastRow,
    ImportFileError,
    Rejection,
    iso_utc,
    read_rows,
    validate_rows,
)

IMPORTER_USERNAME = "importer"
IMPORTED_FORECASTERS_GROUP = "Imported forecasters"  # marks the accounts an import created
NAMESPACE_SEPARATOR = "@"  # never in a slug, so ``<id>@<slug>`` names one (article, id) pair
MAX_SLUG_LENGTH = Article._meta.get_field("slug").max_length
REPORTED_REJECTIONS = 50
OUTCOME_NAMES = {1: Resolution.Outcome.YES, 0: Resolution.Outcome.NO}
QUERY_CHUNK = 500  # ids per ``__in`` query: well under SQLite's bound-parameter limit
Row = ForecastRow | NumericRow


@dataclass
class ImportReport:
    path: str
    article_slug: str
    numeric: bool = False  # the numeric format (numeric and date questions): the header has a ``cdf`` column
    strict: bool = False
    dry_run: bool = False
    rows_read: int = 0
    imported: int = 0
    already_imported: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    clipped: int = 0
    standardised: int = 0  # numeric: CDFs made valid on the site's rules (``continuous.build.standardise``)
    questions_created: int = 0
    forecasters_created: int = 0
    questions_rescored: int = 0
    committed: bool = False
    seconds: float = 0.0
    rescoring_seconds: float = 0.0  # of ``seconds``: recomputing scores and aggregate histories

    @property
    def failed_strict(self) -> bool:
        return self.strict and bool(self.rejected)

    def lines(self, *, max_rejections: int = REPORTED_REJECTIONS) -> list[str]:
        """The report as text lines: rejected rows (the first ``max_rejections``), then totals."""
        out: list[str] = []
        if self.rejected:
            out.append(f"Rejected rows ({len(self.rejected)}):")
            out.extend(f"  {rejection}" for rejection in self.rejected[:max_rejections])
            if len(self.rejected) > max_rejections:
                out.append(f"  ... and {len(self.rejected) - max_rejections} more rejected rows")
        out += [
            f"File: {self.path} ({'numeric and date questions' if self.numeric else 'yes/no questions'})",
            f"Article: {self.article_slug}",
            f"Rows read: {self.rows_read}",
            f"Imported: {self.imported}",
            f"Already imported: {self.already_imported}",
            f"Rejected: {len(self.rejected)}",
            f"CDFs standardised to the site's rules: {self.standardised}"
            if self.numeric
            else f"Probabilities clipped to [{MIN_PROBABILITY}, {MAX_PROBABILITY}]: {self.clipped}",
            f"Questions created: {self.questions_created}",
            f"Forecasters created: {self.forecasters_created}",
            f"Questions rescored: {self.questions_rescored}",
            f"Time: {self.seconds:.1f} s (rescoring {self.rescoring_seconds:.1f} s)",
        ]
        if self.failed_strict:
            out.append("Strict mode: rows were rejected, so nothing was imported.")
        elif self.dry_run:
            out.append("Dry run: nothing was written (the import was rolled back).")
        return out


# --- the import service -------------------------------------------------------------------------------


def default_article_slug(path: str | Path) -> str:
    """``imported-<file name without .gz and .csv>``, slugified."""
    name = Path(path).name
    for suffix in (".gz", ".csv"):
        name = name.removesuffix(suffix)
    return f"imported-{slugify(name) or 'forecasts'}"[:MAX_SLUG_LENGTH].rstrip("-_")


def imported_username(*, forecaster_id: str, article_slug: str) -> str:
    """The username of an imported forecaster: the source's id in the import target's namespace."""
    return f"{forecaster_id}{NAMESPACE_SEPARATOR}{article_slug}"


def _chunks(items: list, size: int = QUERY_CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _resolution_fields(row: Row) -> dict:
    if isinstance(row, NumericRow):
        return row.resolution_fields()
    return {"outcome": OUTCOME_NAMES[row.outcome]}


class _StrictRollback(Exception):
    """Raised inside the import's transaction to roll back a strict or dry run."""


def forecasts_import(
    *, path: str | Path, article_slug: str | None = None, strict: bool = False, dry_run: bool = False
) -> ImportReport:
    """Import a flat forecast file (see the module docstring) in one transaction.

    Raises ``ImportFileError`` (and writes nothing) when the file cannot be imported at all.
    Otherwise returns the report; with ``strict`` and rejected rows nothing is written and
    ``report.failed_strict`` is true; with ``dry_run`` everything is rolled back.
    """
    started = time.perf_counter()
    path = Path(path)
    slug = article_slug if article_slug is not None else default_article_slug(path)
    try:
        validate_slug(slug)
    except ValidationError:
        raise ImportFileError(f"“{slug}” is not a valid slug (letters, digits, hyphens, underscores).") from None
    if len(slug) > MAX_SLUG_LENGTH:
        raise ImportFileError(f"The article slug may have at most {MAX_SLUG_LENGTH} characters.")

    kind, raw_rows = read_rows(path)
    numeric = kind == NUMERIC
    report = ImportReport(
        path=str(path), article_slug=slug, numeric=numeric, strict=strict, dry_run=dry_run, rows_read=len(raw_rows)
    )
    rows, rejected = (validate_numeric_rows if numeric else validate_rows)(
        raw_rows,
        max_forecaster_id_length=MAX_USERNAME_LENGTH - len(imported_username(forecaster_id="", article_slug=slug)),
    )
    report.rejected = rejected
    if strict and rejected:  # nothing the database says can make the file acceptable
        report.rejected.sort(key=lambda rejection: rejection.line)
        report.seconds = time.perf_counter() - started
        return report

    try:
        with transaction.atomic():
            _write(path, slug, rows, report)
            report.rejected.sort(key=lambda rejection: rejection.line)
            if report.failed_strict:
                raise _StrictRollback
            if dry_run:
                transaction.set_rollback(True)
            else:
                report.committed = True
    except _StrictRollback:
        report.imported = report.questions_created = report.forecasters_created = report.questions_rescored = 0
    report.seconds = time.perf_counter() - started
    return report


def _database_conflict(row: Row, question: Question, resolution: Resolution | None) -> str | None:
    """Why a row cannot join a question the database already holds; None when it can."""
    if isinstance(row, NumericRow):
        return database_conflict(row, question, resolution)
    wanted = OUTCOME_NAMES[row.outcome]
    if resolution is None or question.status != Question.Status.RESOLVED:
        return (
            f"question {row.question_id} is {question.status} in the database, not resolved; "
            f"the file says it resolved {wanted.label.upper()}"
        )
    if resolution.outcome != wanted:
        return (
            f"question {row.question_id} is resolved as “{resolution.describe()}” in the database; "
            f"the file says {wanted.label.upper()}"
        )
    if row.made_at > resolution.resolved_at:
        return (
            f"made after the question resolved (made_at {iso_utc(row.made_at)}, resolved in the database "
            f"at {iso_utc(resolution.resolved_at)})"
        )
    return None


def _new_question(row: Row, *, article: Article, opens_at: dt.datetime, source: str, importer) -> Question:
    """The resolved question the first accepted row of a new ``question_id`` describes."""
    if isinstance(row, NumericRow):
        fields, outcome = row.question_fields(), row.describe_outcome()
        closes_at = row.resolved_at if row.closes_at is None else min(row.closes_at, row.resolved_at)
    else:
        fields, outcome = {"question_type": Question.Type.BINARY}, OUTCOME_NAMES[row.outcome].label.upper()
        closes_at = row.resolved_at
    return Question(
        article=article,
        external_id=row.question_id,
        title=f"Imported question {row.question_id}",
        resolution_criteria=(
            f"Resolved as in the source file {source}, where this is question {row.question_id}: "
            f"{outcome} on {iso_utc(row.resolved_at)}."
        ),
        opens_at=opens_at,
        closes_at=closes_at if closes_at > opens_at else opens_at + dt.timedelta(seconds=1),
        status=Question.Status.RESOLVED,
        published_at=opens_at,  # resolved history is public, as if opened then
        created_by=importer,
        **fields,
    )


def _write(path: Path, slug: str, rows: list[Row], report: ImportReport) -> None:
    """The database part of ``forecasts_import``: runs inside its transaction."""
    User = get_user_model()
    source = path.name
    article = Article.objects.filter(slug=slug).first()

    # What the database already holds for this article, in a handful of queries.
    existing_questions: dict[str, Question] = {}
    active_resolutions: dict[int, Resolution] = {}
    existing_predictions: set[tuple[int, int, dt.datetime]] = set()
    used_titles: set[str] = set()
    if article is not None:
        for question in Question.objects.filter(article=article):
            used_titles.add(question.title)
            if question.external_id:
                existing_questions[question.external_id] = question
        active_resolutions = {
            r.question_id: r
            for r in Resolution.objects.filter(question__article=article, retracted_at__isnull=True).select_related(
                "option", "question"
            )
        }
        existing_predictions = set(
            Prediction.objects.filter(question__article=article).values_list("question_id", "forecaster_id", "made_at")
        )

    # Rows of questions the database already has must agree with the resolution there.
    keep: list[Row] = []
    for row in rows:
        question = existing_questions.get(row.question_id)
        if question is None:
            if f"Imported question {row.question_id}" in used_titles:
                report.rejected.append(
                    Rejection(
                        row.line,
                        f"article {slug} already has a question titled “Imported question {row.question_id}” "
                        "with another external id",
                    )
                )
                continue
            keep.append(row)
            continue
        reason = _database_conflict(row, question, active_resolutions.get(question.pk))
        if reason:
            report.rejected.append(Rejection(row.line, reason))
        else:
            keep.append(row)
    rows = keep

    # Forecasters: reuse only the accounts an import created under the same namespaced name; a site
    # account holding that name is never taken over, its rows are rejected.
    username_of = {
        row.forecaster_id: imported_username(forecaster_id=row.forecaster_id, article_slug=slug) for row in rows
    }
    usernames = sorted(set(username_of.values()))
    user_ids: dict[str, int] = {}
    site_accounts: set[str] = set()
    imported = Exists(
        User.groups.through.objects.filter(user_id=OuterRef("pk"), group__name=IMPORTED_FORECASTERS_GROUP)
    )
    for chunk in _chunks(usernames):
        for username, pk, ours in (
            User.objects.filter(username__in=chunk).annotate(ours=imported).values_list("username", "pk", "ours")
        ):
            if ours:
                user_ids[username] = pk
            else:
                site_accounts.add(username)
    keep = []
    for row in rows:
        if username_of[row.forecaster_id] in site_accounts:
            report.rejected.append(
                Rejection(
                    row.line,
                    f"forecaster_id {row.forecaster_id} would be the user {username_of[row.forecaster_id]}, "
                    "a site account, not a forecaster imported before",
                )
            )
        else:
            keep.append(row)
    rows = keep
    if report.failed_strict or not rows:
        return

    new_usernames = [name for name in usernames if name not in user_ids and name not in site_accounts]
    User.objects.bulk_create(
        [User(username=name, password=make_password(None)) for name in new_usernames], batch_size=QUERY_CHUNK
    )
    new_user_ids: list[int] = []
    for chunk in _chunks(new_usernames):
        found = dict(User.objects.filter(username__in=chunk).values_list("username", "pk"))
        user_ids.update(found)
        new_user_ids.extend(found.values())
    if new_user_ids:
        group, _ = Group.objects.get_or_create(name=IMPORTED_FORECASTERS_GROUP)
        User.groups.through.objects.bulk_create(
            [User.groups.through(user_id=pk, group_id=group.pk) for pk in new_user_ids], batch_size=QUERY_CHUNK
        )
    report.forecasters_created = len(new_usernames)
    user_ids = {row.forecaster_id: user_ids[username_of[row.forecaster_id]] for row in rows}

    # Forecasts already in the database are counted, not duplicated.
    new_rows: list[Row] = []
    for row in rows:
        question = existing_questions.get(row.question_id)
        if question is not None and (question.pk, user_ids[row.forecaster_id], row.made_at) in existing_predictions:
            report.already_imported += 1
        else:
            new_rows.append(row)
    if not new_rows:
        return

    now = timezone.now()
    if article is None:
        article = Article.objects.create(
            slug=slug,
            title=f"Imported forecasts: {source}"[: Article._meta.get_field("title").max_length],
            published_at=min(row.made_at for row in new_rows),
            body=(
                f"Resolved {'numeric and date' if report.numeric else 'yes/no'} forecasts imported from the file "
                f"{source} on {now:%Y-%m-%d} "
                "with manage.py import_forecasts. Each question stands for one question_id of the source."
            ),
        )
    importer, created = User.objects.get_or_create(username=IMPORTER_USERNAME, defaults={"is_active": False})
    if created:
        importer.set_unusable_password()
        importer.save(update_fields=["password"])
    elif importer.is_active or importer.has_usable_password():
        # a reader who signed up as "importer" must not become the author of imported resolutions
        raise ImportFileError(
            f"The username “{IMPORTER_USERNAME}” belongs to a site account (active or with a password), "
            "so it cannot stand for the import; rename that account first."
        )

    # New questions, created resolved, with their resolution and audit event.
    by_question: dict[str, list[Row]] = {}
    for row in new_rows:
        by_question.setdefault(row.question_id, []).append(row)
    new_questions = [
        _new_question(
            question_rows[0],
            article=article,
            opens_at=min(row.made_at for row in question_rows),
            source=source,
            importer=importer,
        )
        for question_id, question_rows in by_question.items()
        if question_id not in existing_questions
    ]
    Question.objects.bulk_create(new_questions, batch_size=QUERY_CHUNK)
    report.questions_created = len(new_questions)
    question_ids = dict(
        Question.objects.filter(article=article).exclude(external_id="").values_list("external_id", "pk")
    )
    note = f"imported from {source}"
    Resolution.objects.bulk_create(
        [
            Resolution(
                question_id=question_ids[q.external_id],
                **_resolution_fields(by_question[q.external_id][0]),
                note=note,
                resolved_by=importer,
                resolved_at=by_question[q.external_id][0].resolved_at,
            )
            for q in new_questions
        ],
        batch_size=QUERY_CHUNK,
    )
    QuestionEvent.objects.bulk_create(
        [
            QuestionEvent(
                question_id=question_ids[q.external_id],
                actor=importer,
                action=QuestionEvent.Action.RESOLVED,
                from_status="",
                to_status=Question.Status.RESOLVED,
                note=note,
                created_at=now,
            )
            for q in new_questions
        ],
        batch_size=QUERY_CHUNK,
    )

    # Forecasts before an existing question opened move its opening earlier.
    for question_id, question_rows in by_question.items():
        question = existing_questions.get(question_id)
        earliest = min(row.made_at for row in question_rows)
        if question is not None and earliest < question.opens_at:
            Question.objects.filter(pk=question.pk).update(opens_at=earliest, updated_at=now)

    Prediction.objects.bulk_create(
        [
            Prediction(
                question_id=question_ids[row.question_id],
                forecaster_id=user_ids[row.forecaster_id],
                made_at=row.made_at,
                **({"cdf": list(row.cdf)} if isinstance(row, NumericRow) else {"probability": row.probability}),
            )
            for row in new_rows
        ],
        batch_size=2000,
    )
    report.imported = len(new_rows)
    if report.numeric:
        report.standardised = sum(row.standardised for row in new_rows)
    else:
        report.clipped = sum(row.clipped for row in new_rows)

    rescoring_started = time.perf_counter()
    touched = sorted({question_ids[question_id] for question_id in by_question})
    for chunk in _chunks(touched, 500):
        services.question_scores_recompute_many(question_ids=chunk)
        services.aggregate_history_rebuild_many(question_ids=chunk)
    if touched:
        jobs.enqueue("forecasting.tasks.refit_aggregators")  # the extremizing factor learns from the new resolutions
    report.questions_rescored = len(touched)
    report.rescoring_seconds = time.perf_counter() - rescoring_started
