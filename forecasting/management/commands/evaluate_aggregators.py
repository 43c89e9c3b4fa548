"""Causal walk-forward benchmark of the aggregation methods on a flat CSV of resolved forecasts.

The protocol lives in ``forecasting.evaluation`` (see its docstring). Stdout holds the result
only (a table, or with ``--json`` exactly one JSON object); drop counts and progress go to stderr
(progress only without ``--json``). ``--plots DIR`` writes a calibration diagram and the Brier score
over time.
"""

from __future__ import annotations

import json
import math
import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from forecasting import evaluation


def _since(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"--since must be a date YYYY-MM-DD, got {value!r}") from error


def _json_safe(value):
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _plain(text: str) -> str:
    return text


class _ProgressLine:
    """Progress on stderr: rewritten in place on a terminal, a line per tenth elsewhere (logs)."""

    def __init__(self, stream, started: float):
        self.stream = stream
        self.started = started
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        step = percent if self.tty else percent // 10 * 10
        if step == self.shown:
            return
        self.shown = step
        text = f"evaluating: {percent:3d}% (fit {done} of {total}, {time.monotonic() - self.started:.0f}s)"
        if self.tty:
            self.stream.write("\r" + text + ("\n" if done >= total else ""), ending="")
            self.stream.flush()
        else:
            self.stream.write(text)


class Command(BaseCommand):
    help = "Score every aggregation method walk-forward on a CSV of resolved forecasts (optionally gzipped)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file",
            help="CSV (or .csv.gz): question_id, forecaster_id, made_at, probability, outcome, resolved_at "
            "(or the multiple-choice or numeric format, detected from the header)",
        )
        parser.add_argument("--since", help="only score questions resolved on or after this date (YYYY-MM-DD)")
        parser.add_argument(
            "--min-forecasters",
            type=int,
            default=evaluation.DEFAULT_MIN_FORECASTERS,
            help="only score questions with at least this many distinct forecasters (default %(default)s)",
        )
        parser.add_argument(
            "--refit-every",
            type=float,
            default=evaluation.DEFAULT_REFIT_EVERY_DAYS,
            metavar="DAYS",
            help="refit learnt parameters at most every DAYS days of resolutions "
            "(default %(default)s: after every resolution, as the product does)",
        )
        parser.add_argument(
            "--time-averaged",
            action="store_true",
            help="also report the Brier and log scores averaged over each question's life",
        )
        parser.add_argument("--plots", metavar="DIR", help="write calibration.png and brier_over_time.png into DIR")
        parser.add_argument("--methods", help="comma-separated subset of the methods (default: all, bayes included)")
        parser.add_argument("--json", action="store_true", help="print the result as one JSON object")

    def handle(self, *args, **options) -> None:
        since = _since(options["since"]) if options["since"] else None
        if options["min_forecasters"] < 1:
            raise CommandError("--min-forecasters must be at least 1")
        if options["refit_every"] < 0:
            raise CommandError("--refit-every must not be negative")
        requested = [m.strip() for m in options["methods"].split(",") if m.strip()] if options["methods"] else None

        started = time.monotonic()
        try:
            raw = evaluation.read_csv(options["file"])
            numeric = evaluation.is_numeric(raw)
            multiple_choice = not numeric and evaluation.is_multiple_choice(raw)
            if numeric:
                evaluation.resolve_numeric_methods(requested)
                frame, dropped = evaluation.clean_numeric(raw)
            elif multiple_choice:
                frame, dropped = evaluation.clean_multiple_choice(raw)
            else:
                methods = evaluation.resolve_methods(requested)
                frame, dropped = evaluation.clean_forecasts(raw)
        except OSError as error:
            raise CommandError(f"cannot read {options['file']}: {error}") from error
        except ValueError as error:  # missing columns, undecodable file, unknown method
            raise CommandError(f"{options['file']}: {error}" if "method" not in str(error) else str(error)) from error
        dropped_total = sum(dropped.values())
        details = ", ".join(f"{reason}: {count}" for reason, count in dropped.items() if count)
        self.stderr.write(
            f"{len(frame)} forecasts kept, {dropped_total} dropped" + (f" ({details})" if details else ""),
            style_func=_plain,
        )
        unknown_close = evaluation.questions_without_close(frame)
        if unknown_close:
            self.stderr.write(
                f"{unknown_close} question(s) without a plausible close date: their clock is their newest forecast",
                style_func=_plain,
            )

        progress = None if options["json"] else _ProgressLine(self.stderr, started)
        if numeric:
            if options["time_averaged"] or options["plots"]:
                raise CommandError("--time-averaged and --plots are for yes/no files only, not numeric ones")
            result = evaluation.evaluate_numeric(
                raw,
                since=since,
                min_forecasters=options["min_forecasters"],
                refit_every_days=options["refit_every"],
                methods=requested,
                progress=progress,
            )
            self._finish(result, options, started)
            return
        if multiple_choice:
            if options["time_averaged"] or options["plots"] or since:
                raise CommandError("--time-averaged, --plots and --since are for yes/no files only")
            try:
                result = evaluation.evaluate_multiple_choice(
                    raw,
                    min_forecasters=options["min_forecasters"],
                    refit_every_days=options["refit_every"],
                    methods=requested,
                    progress=progress,
                )
            except ValueError as error:
                raise CommandError(str(error)) from error
            self._finish(result, options, started)
            return

        result = evaluation.evaluate(
            frame,
            since=since,
            min_forecasters=options["min_forecasters"],
            refit_every_days=options["refit_every"],
            methods=methods,
            time_averaged=options["time_averaged"],
            progress=progress,
            keep_predictions=bool(options["plots"]),
        )
        if options["plots"]:
            from forecasting.evaluation import plots  # matplotlib is only loaded when pictures are asked for

            try:
                written = plots.write_plots(result, options["plots"])
            except OSError as error:
                raise CommandError(f"cannot write the plots: {error}") from error
            self.stderr.write("plots: " + ", ".join(str(p) for p in written), style_func=_plain)
            del result["predictions"]
        self._finish(result, options, started)

    def _finish(self, result: dict, options: dict, started: float) -> None:
        self.stderr.write(
            f"scored {result['questions']} questions in {time.monotonic() - started:.1f}s", style_func=_plain
        )
        if options["json"]:
            self.stdout.write(json.dumps(_json_safe(result)))
        elif result.get("question_type") == "numeric":
            self.stdout.write(evaluation.format_numeric_table(result))
        else:
            self.stdout.write(evaluation.format_table(result))
