"""Is the search helping? Every strategy x a set of problems x several seeds, at equal proposals.

The proposal operator is the same for all: the offline mutator (no network, no key), so the
strategies differ only in which parent (and inspirations) each proposal starts from. For each
run the script records the best score so far after every proposal, then prints, per problem and
strategy, the median over seeds and the spread (25th-75th percentile) at a few proposal counts,
and draws the median curves with their spread as a PNG (matplotlib, from the ``dev`` extra).

Problems: ``circle_packing`` (shipped), the problem ``evolve init`` scaffolds (12 points,
Riesz energy), and ``benchmarks/deceptive_problem`` (a trap function whose slope leads away
from the optimum: the case where a hill climber gets stuck). ``search=pareto`` is left out: it
answers a different question (a front over several objectives, not one score).

    python benchmarks/search_quality.py --png benchmarks/search_quality.png   # 3 x 3 x 5 seeds x 200
    python benchmarks/search_quality.py --quick    # 2 problems x 3 strategies x 2 seeds x 40 (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from evolve.app import build_controller, compose_config, execute, start_run
from evolve.scaffold import scaffold_problem

HERE = Path(__file__).resolve().parent
STRATEGIES = ("random", "greedy", "map_elites")
COLORS = {"random": "#888888", "greedy": "#d62728", "map_elites": "#1f77b4"}

Curve = list[float]  # best score so far after each proposal (index 0: the initial program)


def one_run(problem: str, strategy: str, seed: int, proposals: int, runs_dir: Path, concurrency: int) -> tuple[Curve, bool]:
    """The best-so-far curve of one seeded run, in the problem's own units; and its direction."""
    name = f"{Path(problem).name}-{strategy}-{seed}"
    config = compose_config([
        f"problem={problem}", f"search={strategy}", f"seed={seed}", f"max_iterations={proposals}",
        "progress=false", f"runs_dir={runs_dir}", f"run_name={name}", f"evaluator.concurrency={concurrency}",
    ])
    opened = start_run(config)
    try:
        controller = build_controller(run_id=opened.loc.run_id, config=config, problem=opened.problem, db=opened.db,
                                      lease=opened.lease)
        asyncio.run(execute(controller))
        programs = opened.db.programs(opened.loc.run_id)
    finally:
        opened.close()
    spec = opened.problem.spec.metrics
    maximize = spec.direction == "maximize"
    curve: Curve = []
    best: float | None = None
    for p in programs:
        score = p.score(spec.primary)
        if score is not None and (best is None or (score > best if maximize else score < best)):
            best = score
        assert best is not None, "the initial program has a score"
        curve.append(best)
    return curve, maximize


def quantiles(values: Sequence[float]) -> tuple[float, float, float]:
    """25th percentile, median, 75th percentile (inclusive method: fine for a few seeds)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[1], q[2]


def table(results: dict[str, dict[str, list[Curve]]], directions: dict[str, bool], checkpoints: Sequence[int]) -> str:
    head = "problem           strategy     " + "".join(f"{'@' + str(c):>22}" for c in checkpoints)
    lines = [head, "-" * len(head)]
    for problem, by_strategy in results.items():
        for strategy, curves in by_strategy.items():
            cells = []
            for c in checkpoints:
                lo, med, hi = quantiles([curve[c] for curve in curves])
                cells.append(f"{med:>10.5g} [{lo:.4g}, {hi:.4g}]".rjust(22))
            lines.append(f"{problem:<17} {strategy:<12} " + "".join(cells))
        lines.append("")
    lines.append("median best score so far over seeds [25th, 75th percentile], at equal proposals")
    lines.append("(" + ", ".join(f"{p}: {'higher' if directions[p] else 'lower'} is better" for p in results) + ")")
    return "\n".join(lines)


def verdicts(results: dict[str, dict[str, list[Curve]]], directions: dict[str, bool], default: str = "map_elites") -> list[str]:
    """Where the default stands against random, and against the best strategy's spread."""
    out = []
    for problem, by_strategy in results.items():
        sign = 1.0 if directions[problem] else -1.0
        final = {s: quantiles([c[-1] for c in curves]) for s, curves in by_strategy.items()}
        med = {s: q[1] * sign for s, q in final.items()}
        best = max(med, key=lambda s: med[s])
        lo, _, hi = final[best]
        within = min(lo, hi) <= final[default][1] <= max(lo, hi)
        vs_random = "not worse than" if med[default] >= med["random"] else "WORSE than"
        out.append(
            f"{problem}: {default} is {vs_random} random (median), best is {best}"
            + ("" if best == default else f"; {default} {'is' if within else 'is NOT'} within its spread")
        )
    return out


def markdown(results: dict[str, dict[str, list[Curve]]], directions: dict[str, bool]) -> str:
    """README's table: the median best score at the last proposal [25th, 75th percentile], the
    best median in bold."""
    strategies = list(next(iter(results.values())))
    lines = ["| problem | " + " | ".join(f"`{s}`" for s in strategies) + " |", "|---" * (len(strategies) + 1) + "|"]
    for problem, by_strategy in results.items():
        final = {s: quantiles([c[-1] for c in curves]) for s, curves in by_strategy.items()}
        pick = max if directions[problem] else min
        top = pick(final, key=lambda s: final[s][1])
        cells = [(f"**{q[1]:.5g}**" if s == top else f"{q[1]:.5g}") + f" [{q[0]:.5g}, {q[2]:.5g}]" for s, q in final.items()]
        lines.append(f"| {problem} ({'higher' if directions[problem] else 'lower'} is better) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def png(results: dict[str, dict[str, list[Curve]]], directions: dict[str, bool], path: Path) -> None:
    """One panel per problem: median best-so-far per strategy, the 25-75% band shaded; one legend
    for all panels, below them, where it covers no curve."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.6), squeeze=False)
    for ax, (problem, by_strategy) in zip(axes[0], results.items(), strict=True):
        for strategy, curves in by_strategy.items():
            band = [quantiles([c[i] for c in curves]) for i in range(len(curves[0]))]
            xs = range(len(band))
            color = COLORS.get(strategy, "#2ca02c")
            ax.fill_between(xs, [q[0] for q in band], [q[2] for q in band], step="post", color=color, alpha=0.18,
                            linewidth=0)
            ax.step(xs, [q[1] for q in band], where="post", color=color, linewidth=1.8, label=strategy)
        ax.set_title(f"{problem} ({'higher' if directions[problem] else 'lower'} is better)", fontsize=10)
        ax.set_xlabel("proposals")
        ax.set_xlim(0, len(band) - 1)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("best score so far")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False,
               title="median over seeds, 25-75% band shaded")
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 problems x 2 seeds x 40 proposals (CI)")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--proposals", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--png", type=Path, default=None, help="where to draw the figure (needs matplotlib; default: none)")
    args = parser.parse_args(argv)
    seeds = args.seeds or (2 if args.quick else 5)
    proposals = args.proposals or (40 if args.quick else 200)
    with tempfile.TemporaryDirectory() as tmp:
        toy = Path(tmp) / "points12"
        scaffold_problem(toy)
        problems = {"deceptive_trap": str(HERE / "deceptive_problem"), "points12": str(toy)}
        if not args.quick:
            problems = {"circle_packing": "circle_packing", **problems}
        results: dict[str, dict[str, list[Curve]]] = {}
        directions: dict[str, bool] = {}
        t0 = time.monotonic()
        for label, problem in problems.items():
            results[label] = {}
            for strategy in STRATEGIES:
                curves = []
                for seed in range(seeds):
                    curve, directions[label] = one_run(problem, strategy, seed, proposals, Path(tmp) / "runs", args.concurrency)
                    curves.append(curve)
                results[label][strategy] = curves
    checkpoints = sorted({proposals // 8, proposals // 4, proposals // 2, proposals})
    print(f"search quality: {len(problems)} problems x {len(STRATEGIES)} strategies x {seeds} seeds x "
          f"{proposals} proposals, offline mutator ({time.monotonic() - t0:.0f} s)")
    print(table(results, directions, checkpoints))
    print()
    print("\n".join(verdicts(results, directions)))
    print()
    print(markdown(results, directions))
    if args.png is not None:
        png(results, directions, args.png)
        print(f"figure: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
