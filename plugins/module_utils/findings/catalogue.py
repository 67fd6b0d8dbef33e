"""The catalogue of findings troubleshoot can name: id -> what the user sees,
cause, fix. Each concern's module (env, container, proxy, image, database)
registers its entries here and returns findings made with ``make``; the
README's catalogue is generated from ENTRIES (tests/unit keep them equal).

Fix texts name the playbooks the way a user runs them, through ``run``.
Nothing here may carry a secret: findings quote masked URLs and names of
variables, never .env values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

COLLECTION = "chainlit_deploy.stack"


def run(playbook: str) -> str:
    """How a user runs one of the collection's playbooks."""
    return f"`ansible-playbook -i <inventory> {COLLECTION}.{playbook}`"


@dataclass(frozen=True)
class Entry:
    id: str
    concern: str
    symptom: str  # what the user sees
    cause: str
    fix: str


ENTRIES: dict[str, Entry] = {}


def entry(fid: str, concern: str, symptom: str, cause: str, fix: str) -> Entry:
    """Register a catalogue entry (each id once)."""
    if fid in ENTRIES:
        raise ValueError(f"finding {fid} registered twice")
    ENTRIES[fid] = Entry(fid, concern, " ".join(symptom.split()), cause, fix)
    return ENTRIES[fid]


class _Fields(dict):
    """Format fields; one that is not given reads <field> (the README's form)."""

    def __missing__(self, key: str) -> str:
        return f"<{key}>"


def make(fid: str, finding: str, cause: str = "", fix: str = "", **fields: str) -> dict[str, str]:
    """A finding of the catalogue's entry ``fid``: the evidence found on this
    host, and the entry's cause and fix with its fields filled in (``{name}``:
    the app), each extended with what is specific to this case when given."""
    known = ENTRIES[fid]
    values = _Fields(fields)
    return {
        "id": fid,
        "finding": finding,
        "cause": _join(known.cause.format_map(values), cause),
        "fix": _join(known.fix.format_map(values), fix),
    }


def _join(base: str, extra: str) -> str:
    return f"{base} {extra}".strip() if extra else base


def report(found: Sequence[Mapping[str, str]], notes: Iterable[str] = ()) -> list[str]:
    """The findings as numbered FINDING / CAUSE / FIX lines, then the summary line."""
    lines: list[str] = []
    for number, item in enumerate(found, 1):
        pad = " " * len(str(number))
        lines += [
            f"{number}. [{item['id']}] FINDING: {item['finding']}",
            f"{pad}  CAUSE: {item['cause']}",
            f"{pad}  FIX:   {item['fix']}",
        ]
    lines += [f"not checked: {note}" for note in notes if note]
    count = len(found)
    lines.append(
        f"{count} finding{'s' if count != 1 else ''}: " + ", ".join(item["id"] for item in found)
        if count
        else "no problem found"
    )
    return lines


def markdown_table(concerns: Sequence[str]) -> str:
    """The catalogue as the README's table, concern by concern."""
    rows = ["| id | what you see | cause | fix |", "|---|---|---|---|"]
    for concern in concerns:
        for item in ENTRIES.values():
            if item.concern == concern:
                cells = [
                    f"`{item.id}`",
                    item.symptom.format_map(_Fields()),
                    item.cause.format_map(_Fields()),
                    item.fix.format_map(_Fields()),
                ]
                rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"
