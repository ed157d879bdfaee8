"""Seconds to parse hostile model replies of about 120 KB: every parse of :mod:`evolve.diffs`.

Usage: ``python benchmarks/reply_parsing.py [--size 120000] [--repeat 3]``

Each reply is built to hit a worst case of some parser: lines that open a code fence and never
close it (a fence regex over the whole text rescanned the rest of the reply from each of them),
thousands of fence or SEARCH/REPLACE marker lines, one very long line. Each figure is the best of
``--repeat`` runs of :func:`~evolve.diffs.extract_program` (rewrite mode),
:func:`~evolve.diffs.parse_edits` (diff mode) and :func:`~evolve.diffs.merge_rewrite`, and of
applying a SEARCH text that matches thousands of overlapping places in a long program.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from functools import partial

from evolve.diffs import DiffError, Edit, apply_edits, extract_program, merge_rewrite, parse_edits

PROGRAM = "# EVOLVE-BLOCK-START\nx = 1\n# EVOLVE-BLOCK-END\n"


def hostile_replies(size: int) -> dict[str, str]:
    return {
        "unclosed tagged fences": "```python x\n" * (size // 12),
        "unclosed fences, bodies": "```py a\nbody\n" * (size // 13),
        "fence lines": "```\n" * (size // 4),
        "SEARCH markers": "<<<<<<< SEARCH\n" * (size // 15),
        "one long line": "<" * size,
    }


def best_of(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with contextlib.suppress(DiffError):
            work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=120_000, help="reply size in characters")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'reply':26s} {'chars':>8s} {'extract':>9s} {'edits':>9s} {'merge':>9s}")
    for name, reply in hostile_replies(args.size).items():
        figures = [
            best_of(args.repeat, partial(extract_program, reply)),
            best_of(args.repeat, partial(parse_edits, reply)),
            best_of(args.repeat, partial(merge_rewrite, PROGRAM, reply)),
        ]
        print(f"{name:26s} {len(reply):8d} " + " ".join(f"{t:8.4f}s" for t in figures))
    lines = args.size // 10
    program = "    x = 1\n" * lines
    for label, search in (("exact", "    x = 1\n"), ("shifted", "x = 1\n")):
        edit = Edit(search * (lines // 2), "y = 2\n")
        seconds = best_of(args.repeat, partial(apply_edits, program, [edit]))
        print(f"apply, {lines // 2} overlapping {label} matches: {seconds:.4f}s")


if __name__ == "__main__":
    main()
