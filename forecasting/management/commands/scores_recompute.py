"""Recompute stored scores from the database (after a change to the scoring rules, or to repair rows).

Idempotent: each question goes through ``services.question_scores_recompute``, which makes its
Score rows match its current resolution, so running the command twice leaves the same rows.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from forecasting import services
from forecasting.models import Question


class Command(BaseCommand):
    help = "Recompute the stored scores of every resolved question (or only those given with --question)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--question",
            dest="question_ids",
            type=int,
            action="append",
            metavar="ID",
            help="a question's id; repeat for several (default: every question that is resolved or has scores)",
        )

    def handle(self, *args, question_ids: list[int] | None = None, **options) -> None:
        if question_ids:
            found = set(Question.objects.filter(pk__in=question_ids).values_list("pk", flat=True))
            missing = sorted(set(question_ids) - found)
            if missing:
                raise CommandError(f"No question with id {', '.join(map(str, missing))}.")
            ids = sorted(found)
        else:
            # Resolved questions, and any other that still holds scores (the service removes them).
            ids = list(
                Question.objects.filter(Q(status=Question.Status.RESOLVED) | Q(scores__isnull=False))
                .distinct()
                .order_by("pk")
                .values_list("pk", flat=True)
            )
        rows = 0
        for question_id in ids:  # one transaction per question: row locks are held briefly
            rows += services.question_scores_recompute(question_id=question_id)
        self.stdout.write(f"Recomputed {len(ids)} question(s): {rows} score rows.")
