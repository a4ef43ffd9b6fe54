"""The results as a plain-text table (for the terminal) and as Markdown (for BENCHMARKS.md): one
row per measurement, a result and a "met" column per schema flavour, and with two flavours the
first one's figure divided by the second's."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.results import LABELS, Figure, Outcome
from cryptochart.db.migrate import Flavour

Group = Mapping[Flavour, Outcome]  # one benchmark, run on each flavour asked (in that order)
SAME_WITHIN = 1.1  # a ratio within 10 % either way gets no verdict: the box is noisy


def _met(figure: Figure | None) -> str:
    if figure is None or figure.met is None:
        return ""
    return "yes" if figure.met else "NO"


def compare(first: Figure | None, second: Figure | None) -> str:
    """``first ÷ second``, and whether that is better or worse for ``first``."""
    if first is None or second is None or first.value is None or second.value is None:
        return ""
    if not second.value or first.better is None:
        return ""
    value = first.value / second.value
    text = f"{value:.2f}x"
    gain = value if first.better == "higher" else 1 / value if value else float("inf")
    if gain > SAME_WITHIN:
        text += " better"
    elif gain < 1 / SAME_WITHIN:
        text += " worse"
    return text


def header(flavours: Sequence[Flavour]) -> tuple[str, ...]:
    cells = ["", "measurement", "target"]
    for flavour in flavours:
        cells += [LABELS[flavour], "met"]
    if len(flavours) > 1:
        cells.append(f"{LABELS[flavours[0]]} ÷ {LABELS[flavours[1]]}")
    return tuple(cells)


def _cells(group: Group) -> list[tuple[str, ...]]:
    flavours = list(group)
    found: dict[tuple[str, str], dict[Flavour, Figure]] = {}
    for flavour, outcome in group.items():
        for figure in outcome.figures:
            found.setdefault((figure.bench, figure.what), {})[flavour] = figure
    rows = []
    for (bench, what), figures in found.items():
        target = next((f.target for f in figures.values() if f.target), "")
        cells = [bench, what, target]
        for flavour in flavours:
            one = figures.get(flavour)
            cells += [one.result if one else "", _met(one)]
        if len(flavours) > 1:
            cells.append(compare(figures.get(flavours[0]), figures.get(flavours[1])))
        rows.append(tuple(cells))
    return rows


def notes(group: Group) -> list[str]:
    """Every flavour's notes; one said by all of them once, the rest named by flavour."""
    outcomes = list(group.values())
    shared = [n for n in outcomes[0].notes if all(n in o.notes for o in outcomes[1:])]
    lines = list(shared)
    for flavour, outcome in group.items():
        lines += [f"{LABELS[flavour]}: {n}" for n in outcome.notes if n not in shared]
    return lines


def _flavours(groups: Sequence[Group]) -> list[Flavour]:
    return list(dict.fromkeys(f for g in groups for f in g))


ONCE_HEADER = ("", "measurement (every flavour in one benchmark)", "target", "result", "met")


def _once_cells(once: Sequence[Outcome]) -> list[tuple[str, ...]]:
    return [(f.bench, f.what, f.target, f.result, _met(f)) for o in once for f in o.figures]


def _tables(groups: Sequence[Group], once: Sequence[Outcome]) -> list[list[tuple[str, ...]]]:
    flavours = _flavours(groups)
    tables = []
    if groups:
        tables.append(
            [header(flavours), *(r for g in groups for r in _cells(_aligned(g, flavours)))]
        )
    if once:
        tables.append([ONCE_HEADER, *_once_cells(once)])
    return tables


def _all_notes(groups: Sequence[Group], once: Sequence[Outcome]) -> list[tuple[Outcome, list[str]]]:
    return [(next(iter(g.values())), notes(g)) for g in groups] + [(o, o.notes) for o in once]


def table(groups: Sequence[Group], once: Sequence[Outcome] = ()) -> str:
    """``groups`` side by side per flavour; ``once``: benchmarks that measure every flavour."""
    lines: list[str] = []
    for rows in _tables(groups, once):
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        text = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        text.insert(1, "  ".join("-" * w for w in widths))
        lines += [*([""] if lines else []), *text]
    for outcome, said in _all_notes(groups, once):
        lines.extend(f"  {outcome.bench}: {n}" for n in said)
    return "\n".join(lines)


def markdown(groups: Sequence[Group], once: Sequence[Outcome] = ()) -> str:
    lines: list[str] = []
    for rows in _tables(groups, once):
        text = ["| " + " | ".join(r) + " |" for r in rows]
        text.insert(1, "| " + " | ".join("---" for _ in rows[0]) + " |")
        lines += [*([""] if lines else []), *text]
    for outcome, said in _all_notes(groups, once):
        lines.append("")
        lines.append(f"**{outcome.bench}, {outcome.title}.**")
        lines.extend(f"- {n}" for n in said)
    return "\n".join(lines)


def _aligned(group: Group, flavours: Sequence[Flavour]) -> Group:
    """``group`` with a (figure-less) outcome for each flavour it lacks, in the table's order."""
    first = next(iter(group.values()))
    return {f: group.get(f) or Outcome(first.bench, first.title) for f in flavours}


START = "<!-- bench:results:start (written by python -m bench) -->"
END = "<!-- bench:results:end -->"
SKELETON = f"""# Benchmarks

`make bench` (or `.venv/bin/python -m bench`) runs them and rewrites the results below.

## Latest full run

{START}
{END}
"""


def write_results(
    path: Path, described: Sequence[str], groups: Sequence[Group], once: Sequence[Outcome] = ()
) -> None:
    """Replace the results section of ``path`` (created if missing); the rest stays as written."""
    text = path.read_text() if path.exists() else SKELETON
    if START not in text or END not in text:
        text = text.rstrip() + "\n\n## Latest full run\n\n" + START + "\n" + END + "\n"
    body = "\n".join(["```", *described, "```", "", markdown(groups, once)])
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    path.write_text(pattern.sub(lambda _: f"{START}\n{body}\n{END}", text))
