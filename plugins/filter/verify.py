"""Filters of the role verify: the pass/fail table of the checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def verify_table(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per check: PASS/FAIL, seconds, name, what it proved or why it failed."""
    rows = list(rows)
    width = max((len(str(row["name"])) for row in rows), default=0)
    return [
        "{} {:>6.2f}s  {}  {}".format(
            "SKIP" if row.get("skipped") else "PASS" if row["ok"] else "FAIL",
            float(row["seconds"]),
            str(row["name"]).ljust(width),
            " ".join(str(row.get("detail") or "").split()),
        )
        for row in rows
    ]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"verify_table": verify_table}
