"""The results as a plain-text table (for the terminal) and as Markdown (for BENCHMARKS.md)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from bench.results import Figure, Outcome

HEADER = ("", "measurement", "result", "target", "met")


def _met(figure: Figure) -> str:
    return "" if figure.met is None else ("yes" if figure.met else "NO")


def _cells(outcomes: Sequence[Outcome]) -> list[tuple[str, ...]]:
    return [(f.bench, f.what, f.result, f.target, _met(f)) for o in outcomes for f in o.figures]


def table(outcomes: Sequence[Outcome]) -> str:
    rows = [HEADER, *_cells(outcomes)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for outcome in outcomes:
        lines.extend(f"  {outcome.bench}: {n}" for n in outcome.notes)
    return "\n".join(lines)


def markdown(outcomes: Sequence[Outcome]) -> str:
    rows = [HEADER, *_cells(outcomes)]
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines.insert(1, "| " + " | ".join("---" for _ in HEADER) + " |")
    for outcome in outcomes:
        lines.append("")
        lines.append(f"**{outcome.bench}, {outcome.title}.**")
        lines.extend(f"- {n}" for n in outcome.notes)
    return "\n".join(lines)


START = "<!-- bench:results:start (written by python -m bench) -->"
END = "<!-- bench:results:end -->"
SKELETON = f"""# Benchmarks

`make bench` (or `.venv/bin/python -m bench`) runs them and rewrites the results below.

## Latest full run

{START}
{END}
"""


def write_results(path: Path, header: Sequence[str], outcomes: Sequence[Outcome]) -> None:
    """Replace the results section of ``path`` (created if missing); the rest stays as written."""
    text = path.read_text() if path.exists() else SKELETON
    if START not in text or END not in text:
        text = text.rstrip() + "\n\n## Latest full run\n\n" + START + "\n" + END + "\n"
    body = "\n".join(["```", *header, "```", "", markdown(outcomes)])
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    path.write_text(pattern.sub(lambda _: f"{START}\n{body}\n{END}", text))
