"""The score report: overall and per-category rates, the leaderboard's AST columns, and their markdown tables.

Per row the report says whether it was correct and the first rule it broke (RowScore.reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fcdist.data.xlam import XlamRow
from fcdist.score.bfcl_rules import IRRELEVANCE

CATEGORIES = ("simple", "multiple", "parallel", "parallel-multiple", "no-call")

# The leaderboard's non-live AST columns: (heading, the category names fcdist gives them).
AST_COLUMNS = (
    ("Simple", ("simple",)),
    ("Multiple", ("multiple",)),
    ("Parallel", ("parallel",)),
    ("Parallel Multiple", ("parallel_multiple", "parallel-multiple")),
)


@dataclass(frozen=True)
class RowScore:
    id: Any
    category: str
    parsed: bool  # the completion held readable calls
    names_match: bool  # the multiset of called function names equals the gold's
    correct: bool
    reason: str  # "ok", or the first rule the row broke

    def summary(self) -> dict:
        return {"id": self.id, "category": self.category, "correct": self.correct, "reason": self.reason}


def category(row: XlamRow) -> str:
    """The row's own ``category``, else: simple / multiple (one call, one or several tools), parallel /
    parallel-multiple (several calls), no-call."""
    if row.category is not None:
        return row.category
    if not row.answers:
        return "no-call"
    if len(row.answers) == 1:
        return "simple" if len(row.tools) == 1 else "multiple"
    return "parallel" if len({call["name"] for call in row.answers}) == 1 else "parallel-multiple"


def rates_of(scores: list[RowScore]) -> dict:
    n = len(scores)
    return {
        "n": n,
        "parse_rate": sum(s.parsed for s in scores) / n,
        "name_accuracy": sum(s.names_match for s in scores) / n,
        "exact_match": sum(s.correct for s in scores) / n,
    }


def rates_by_category(scores: list[RowScore]) -> dict:
    """Rates per category: fcdist's own categories first, then the others (a gold row's own) as they come."""
    present = dict.fromkeys(s.category for s in scores)
    names = [name for name in CATEGORIES if name in present] + [name for name in present if name not in CATEGORIES]
    return {name: rates_of([s for s in scores if s.category == name]) for name in names}


def _accuracy(by_category: dict, names: tuple[str, ...]) -> float | None:
    groups = [by_category[name] for name in names if name in by_category]
    n = sum(group["n"] for group in groups)
    return sum(group["exact_match"] * group["n"] for group in groups) / n if n else None


def leaderboard(by_category: dict) -> dict:
    """The leaderboard's non-live AST columns; the summary is BFCL's unweighted mean of the four AST
    categories (irrelevance is reported beside it, not in it), None when one of them has no rows."""
    columns = {heading: _accuracy(by_category, names) for heading, names in AST_COLUMNS}
    present = [value for value in columns.values() if value is not None]
    summary = sum(present) / len(present) if len(present) == len(AST_COLUMNS) else None
    return {"AST summary": summary, **columns, "Irrelevance": _accuracy(by_category, IRRELEVANCE)}


def leaderboard_markdown(columns: dict) -> str:
    cells = ["N/A" if value is None else f"{value:.2%}" for value in columns.values()]
    return "\n".join(["| " + " | ".join(columns) + " |", "|" + "--:|" * len(columns), "| " + " | ".join(cells) + " |"]) + "\n"


def markdown_table(report: dict) -> str:
    lines = ["| category | n | parse rate | name accuracy | exact match |", "|---|--:|--:|--:|--:|"]
    rows = [("all", report)] + list(report["by_category"].items())
    for name, rates in rows:
        lines.append(
            f"| {name} | {rates['n']} | {rates['parse_rate']:.1%} | {rates['name_accuracy']:.1%} "
            f"| {rates['exact_match']:.1%} |"
        )
    cases = f"{report['cases_scored']} of {report['cases_read']} cases read had a prediction ({report['rules']} rules)"
    board = "Laid out like the leaderboard's AST columns (summary: unweighted mean of the four AST categories):"
    return "\n".join(lines) + f"\n\n{cases}.\n\n{board}\n\n" + leaderboard_markdown(report["leaderboard"])
