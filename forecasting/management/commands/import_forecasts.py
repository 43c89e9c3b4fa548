"""Import resolved yes/no, numeric or date forecasts from a flat CSV file; the formats are in
``forecasting.io.imports``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from forecasting.io.imports import ImportFileError, forecasts_import


class Command(BaseCommand):
    help = (
        "Import resolved forecasts from a CSV file (optionally gzipped). Yes/no questions: the columns "
        "question_id, forecaster_id, made_at, probability, outcome, resolved_at. Numeric and date questions "
        "(a cdf column): question_id, forecaster_id, made_at, cdf, range_min, range_max, open_lower_bound, "
        "open_upper_bound, outcome, resolved_at[, zero_point, question_type, closes_at]. Each forecaster becomes "
        "its own user <forecaster_id>@<article slug>, never an existing site account. Idempotent; one transaction."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="CSV or CSV.gz file to import")
        parser.add_argument(
            "--article-slug", help="slug of the article the questions belong to (default: imported-<file name>)"
        )
        parser.add_argument("--strict", action="store_true", help="import nothing if any row is rejected")
        parser.add_argument("--dry-run", action="store_true", help="validate and report, then roll back")

    def handle(self, *args, file: str, article_slug: str | None, strict: bool, dry_run: bool, **options) -> None:
        try:
            report = forecasts_import(path=file, article_slug=article_slug, strict=strict, dry_run=dry_run)
        except ImportFileError as error:
            raise CommandError(str(error)) from error
        for line in report.lines():
            self.stdout.write(line)
        if report.failed_strict:
            raise CommandError(f"{len(report.rejected)} rows rejected; --strict, so nothing was imported.")
        if report.committed:
            self.stdout.write(self.style.SUCCESS(f"Imported {report.imported} forecasts."))
