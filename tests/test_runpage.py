"""The run page's cost section: the best score against what the model calls had cost."""

from __future__ import annotations

import re

from evolve.problem import Problem
from evolve.records import Program, Status
from evolve.runpage import ModelSummary, model_table, run_page, spend_chart


def _program(i: int, energy: float | None) -> Program:
    return Program(
        id=f"p{i}", run_id="r", iteration=i, parent_id=None if i == 0 else "p0", island=0,
        generation=min(i, 1), code="x = 1\n", code_hash=f"h{i}",
        status=Status.EVALUATED if energy is not None else Status.DIFF_ERROR,
        metrics={} if energy is None else {"energy": energy}, cell=(0,) if energy is not None else None,
    )


def _best_line_points(svg: str) -> list[tuple[float, float]]:
    """The best-so-far step line's corners, in page coordinates."""
    path = re.search(r'<path d="([^"]+)"', svg)
    assert path is not None
    points, x, y = [], 0.0, 0.0
    for op, a, b in re.findall(r"([MHV])([\d.]+)(?: ([\d.]+))?", path.group(1)):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "H":
            x = float(a)
        else:
            y = float(a)
        points.append((x, y))
    return points


def test_the_best_score_is_drawn_against_the_dollars_spent_so_far(toy: Problem) -> None:
    # Energy is minimized: iterations 0, 2 and 3 improve; iteration 3's call is the expensive one.
    programs = [_program(0, 10.0), _program(1, 12.0), _program(2, 8.0), _program(3, 5.0)]
    spend = [(1, 0.10, 1000), (2, 0.10, 1000), (3, 0.80, 5000)]
    svg = spend_chart(programs, toy, spend)
    assert "$1" in svg and "dollars spent" in svg  # the axis ends at the total, $1.00
    xs = sorted({x for x, _ in _best_line_points(svg)})
    left, width = 36.0, 720 - 2 * 36.0
    # The line turns where iteration 2 ($0.20 spent) and iteration 3 ($1.00) improved.
    assert [round((x - left) / width, 3) for x in xs] == [0.0, 0.2, 1.0]


def test_without_prices_the_spend_is_counted_in_tokens(toy: Problem) -> None:
    programs = [_program(0, 10.0), _program(1, 8.0), _program(2, 7.0)]
    svg = spend_chart(programs, toy, [(1, 0.0, 300), (2, 0.0, 100)])
    assert "400 tokens" in svg and "tokens spent" in svg
    xs = sorted({x for x, _ in _best_line_points(svg)})
    assert [round((x - 36.0) / (720 - 72.0), 3) for x in xs] == [0.0, 0.75, 1.0]


def test_a_run_that_cost_nothing_says_so(toy: Problem) -> None:
    programs = [_program(0, 10.0), _program(1, 8.0)]
    assert "cost nothing" in spend_chart(programs, toy, [(1, 0.0, 0)])
    assert "cost nothing" in spend_chart(programs, toy, [])


def test_the_model_table_shows_the_price_of_an_improvement(toy: Problem) -> None:
    models = [
        ModelSummary("big", calls=10, errors=1, retried=2, input_tokens=12000, output_tokens=3000,
                     cost_usd=2.0, mean_latency_s=3.0, children=10, failed=2, improved=4),
        ModelSummary("small", calls=5, errors=0, retried=0, input_tokens=6000, output_tokens=900,
                     cost_usd=0.1, mean_latency_s=1.0, children=5, failed=1, improved=0),
    ]
    table = model_table(models)
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    cells = [re.findall(r"<td>(.*?)</td>", r) for r in rows[1:]]
    assert cells[0] == ["big", "10", "1", "12,000", "3,000", "2", "10", "4", "0.5"]
    assert cells[1][0] == "small" and cells[1][-1] == "-"  # no improvement bought
    free = ModelSummary("local", calls=5, errors=0, retried=0, input_tokens=600, output_tokens=90,
                        cost_usd=0.0, mean_latency_s=1.0, children=5, failed=1, improved=2)
    assert re.findall(r"<td>(.*?)</td>", model_table([free]))[-1] == "-"  # no price, no $ figure
    page = run_page("r", [_program(0, 10.0), _program(1, 8.0)], toy, 1, spend=[(1, 2.1, 100)], models=models)
    assert "<h2>Cost</h2>" in page and table in page
