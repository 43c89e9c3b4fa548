"""`make bench`'s rows: the ratio, the goal and its verdict that the results table and README report."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import rows
import run


def test_a_ratio_goal_is_judged_on_figure_over_baseline():
    fast = rows.row(
        "trades/s", 1_200, "/s", baseline="bare inserts/s", baseline_value=2_000, goal=rows.ratio_at_least(0.5)
    )
    slow = rows.row(
        "trades/s", 900, "/s", baseline="bare inserts/s", baseline_value=2_000, goal=rows.ratio_at_least(0.5)
    )
    assert (fast["ratio"], fast["met"]) == (0.6, True)
    assert (slow["ratio"], slow["met"]) == (0.45, False)
    assert fast["goal"] == ">= 0.5x baseline"


def test_an_absolute_goal_is_judged_on_the_figure_and_keeps_its_baseline_for_context():
    met = rows.row("NUTS", 9.5, "s", baseline="naive pm.sample()", baseline_value=190, goal=rows.at_most(10, "s"))
    missed = rows.row("NUTS", 10.5, "s", baseline="naive pm.sample()", baseline_value=190, goal=rows.at_most(10, "s"))
    assert met["met"] is True and missed["met"] is False
    assert met["ratio"] == pytest.approx(0.05)
    assert rows.row("ESS", 99, "", baseline="", baseline_value=None, goal=rows.at_least(100, ""))["met"] is False


def test_a_row_without_a_goal_is_context_and_a_row_without_a_baseline_has_no_ratio():
    context = rows.row("ops/s", 138, "/s", baseline="one thread", baseline_value=58.6)
    errors = rows.row("errors", 0, "", baseline="", baseline_value=None, goal=rows.at_most(0, ""))
    assert context["met"] is None and context["goal"] == ""
    assert errors["ratio"] is None and errors["met"] is True


def test_a_missing_figure_never_meets_its_goal():
    assert rows.Goal("ratio", ">=", 0.5).met(float("nan"), float("nan")) is False
    assert rows.Goal("ratio", "<=", 2).met(1.0, None) is False
    with pytest.raises(ValueError):
        rows.Goal("ratio", "==", 1)


def test_rows_are_written_as_json_and_printed_as_a_table(tmp_path, capsys):
    written = [rows.row("p95", 40, "ms", baseline="cheapest page", baseline_value=8, goal=rows.at_most(50, "ms"))]
    rows.write_rows(tmp_path / "out" / "rows.json", written)
    assert json.loads((tmp_path / "out" / "rows.json").read_text()) == written
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| benchmark | value | baseline | ratio | goal | met |"
    assert table[2] == "| p95 | 40 ms | cheapest page: 8 ms | 5x | <= 50 ms | yes |"


def test_each_step_gets_its_own_database_on_the_same_server():
    url = run.database_url("postgres://u:p@127.0.0.1:5432/forecasting", "bench_market")
    assert url == "postgres://u:p@127.0.0.1:5432/bench_market"
    assert len({step.name for step in run.STEPS}) == len(run.STEPS)
    assert all((run.ROOT / step.script).exists() for step in run.STEPS)


def test_a_partial_run_keeps_the_other_steps_rows_from_the_last_run_in_the_same_folder(tmp_path):
    steps = tmp_path / "steps"
    steps.mkdir()
    earlier = [rows.row("trades/s", 800, "/s", baseline="bare", baseline_value=3_000)]
    (steps / "market.json").write_text(json.dumps(earlier))
    (steps / "export.json").write_text(json.dumps([rows.row("old export", 9, "s", baseline="", baseline_value=None)]))
    fresh = {"export": [rows.row("new export", 5, "s", baseline="", baseline_value=None)]}
    gathered, kept = run.gather(tmp_path, fresh)
    assert [r["name"] for r in gathered] == ["trades/s", "new export"]  # the runner's order, market first
    assert kept == ["market"]
