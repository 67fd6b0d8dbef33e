"""The required-schema spec covers every column the pinned Chainlit's SQL uses.

The columns are re-derived from the source of chainlit/data/chainlit_data_layer.py
of the installed package, so bumping chainlit to a version that reads or
writes a new column fails here until the spec (and a migration) follow.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import chainlit.data.chainlit_data_layer as data_layer_module
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.chainlit_schema_spec import (
    REQUIRED_COLUMNS,
)

SOURCE = Path(data_layer_module.__file__).read_text(encoding="utf-8")

# Helpers that read rows without running SQL themselves: the table of their rows.
ROW_HELPERS = {
    "_convert_step_row_to_dict": "Step",
    "_convert_element_row_to_dict": "Element",
    "_extract_feedback_dict_from_step_row": "Step",
}
# Function-local names that hold something other than a database row.
NOT_ROWS = {"step_dict", "params", "data", "metadata", "base"}

TABLE = r'"([A-Z]\w*)"'
ALIAS_DEF = re.compile(
    rf"\b(?i:FROM|JOIN)\s+{TABLE}(?:\s+(?!(?i:WHERE|ON|LEFT|JOIN|ORDER)\b)([a-z]\w*))?"
)
QUALIFIED = re.compile(r'\b(\w+)\.(?:"(\w+)"|([a-z_]\w*))')
INSERT = re.compile(rf"INSERT INTO {TABLE}\s*\(([^)]*)\)")
QUOTED = re.compile(r'(?<![.\w])"(\w+)"(?!\.)')
BARE_ASSIGN = re.compile(r'(?<![.\w"])([a-z_]\w*)\s*=\s*(?!=)')
ON_CONFLICT = re.compile(r"ON CONFLICT \((\w+)\)")
RESULT_ALIAS = re.compile(r'(?:\bas\s+|\.(?:"\w+"|\w+)\s+)([a-z_]\w*)\s*(?:,|\n|$)', re.I)


def sql_strings(node: ast.AST) -> list[str]:
    """String constants (and the literal parts of f-strings) that look like SQL."""
    texts = [
        n.value
        for n in ast.walk(node)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and '"' in n.value
    ]
    return [t for t in texts if re.search(r"\b(SELECT|INSERT|DELETE|UPDATE|WHERE|AND)\b", t)]


def row_keys(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Keys read with row["key"] (not .get(): those may be absent)."""
    keys: set[str] = set()
    for node in ast.walk(func):
        if not (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            continue
        base = node.value
        while isinstance(base, ast.Subscript):
            base = base.value
        if isinstance(base, ast.Name) and base.id not in NOT_ROWS:
            keys.add(node.slice.value)
    return keys


def dynamic_insert_columns(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """update_thread builds its INSERT from the keys of the dict literal `data`."""
    keys: set[str] = set()
    for node in ast.walk(func):
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "data" for t in node.targets)
            and isinstance(node.value, ast.Dict)
        ):
            keys |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    return keys


def derive_used_columns() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """({table: columns}, {function: unattributed names}) used by the data layer."""
    used: dict[str, set[str]] = defaultdict(set)
    unresolved: dict[str, set[str]] = {}
    tree = ast.parse(SOURCE)
    # Names given to result columns (`AS total`, `f.id feedback_id`) anywhere.
    result_aliases = {a for text in sql_strings(tree) for a in RESULT_ALIAS.findall(text)}
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        texts = sql_strings(func)
        aliases: dict[str, str] = {}
        tables: set[str] = set()
        insert_tables: set[str] = set()
        for text in texts:
            for table, alias in ALIAS_DEF.findall(text):
                tables.add(table)
                if alias:
                    aliases[alias] = table
            for table, columns in INSERT.findall(text):
                used[table] |= {c.strip().strip('"') for c in columns.split(",") if c.strip()}
            for table in re.findall(rf"INSERT INTO {TABLE}", text):
                insert_tables.add(table)
                aliases["EXCLUDED"] = table
            for table in re.findall(rf"(?:DELETE FROM|UPDATE) {TABLE}", text):
                tables.add(table)
        tables |= insert_tables

        names: set[str] = set()
        for text in texts:
            for qualifier, quoted, bare in QUALIFIED.findall(text):
                qualifier = qualifier.strip('"')
                column = quoted or bare
                if qualifier in aliases:
                    used[aliases[qualifier]].add(column)
            for quoted_ref in re.finditer(r'"(\w+)"\."(\w+)"', text):
                used[quoted_ref.group(1)].add(quoted_ref.group(2))
            names |= {q for q in QUOTED.findall(text) if q not in tables}
            names |= set(BARE_ASSIGN.findall(text))
            names |= set(ON_CONFLICT.findall(text))

        if dynamic := dynamic_insert_columns(func):
            (table,) = insert_tables
            used[table] |= dynamic

        row_tables = tables or ({ROW_HELPERS[func.name]} if func.name in ROW_HELPERS else set())
        keys = row_keys(func) - result_aliases
        if keys and not row_tables:
            unresolved[func.name] = keys
            continue
        # An unqualified name belongs to one of the function's tables: when the
        # spec has it in none of them, the spec lacks it.
        for name in (names | keys) - result_aliases:
            owners = [t for t in row_tables if name in REQUIRED_COLUMNS.get(t, {})]
            for owner in owners:
                used[owner].add(name)
            if not owners:
                unresolved.setdefault(func.name, set()).add(name)
    return dict(used), unresolved


def test_spec_covers_every_column_the_data_layer_uses() -> None:
    used, unresolved = derive_used_columns()
    missing = sorted(
        f"{table}.{column}"
        for table, columns in used.items()
        for column in columns
        if column not in REQUIRED_COLUMNS.get(table, {})
    )
    assert not missing, f"chainlit uses columns the spec lacks: {missing}"
    assert not unresolved, f"used by chainlit, in no table of the spec: {unresolved}"


def test_derivation_sees_the_columns_it_must() -> None:
    """Guards the parser itself: a regex that silently matched nothing would pass above."""
    used, _ = derive_used_columns()
    assert set(used) == set(REQUIRED_COLUMNS)
    expected = {
        "User": {"identifier", "metadata", "createdAt"},
        "Thread": {"tags", "userId", "deletedAt", "updatedAt", "name"},
        "Step": {"showInput", "isError", "startTime", "endTime", "parentId", "type"},
        "Element": {"language", "chainlitKey", "objectKey", "page", "props"},
        "Feedback": {"stepId", "value", "comment"},
    }
    for table, columns in expected.items():
        assert columns <= used[table], f"{table}: not derived: {columns - used[table]}"


def test_spec_has_no_column_chainlit_never_uses() -> None:
    """The spec is derived, not padded: every column in it is used by 2.12 somewhere."""
    used, _ = derive_used_columns()
    unused = sorted(
        f"{table}.{column}"
        for table, columns in REQUIRED_COLUMNS.items()
        for column in columns
        if column not in used.get(table, set())
    )
    # createdAt/updatedAt of some tables are only filled by column defaults.
    assert set(unused) <= {
        "Element.createdAt",
        "Element.updatedAt",
        "Feedback.createdAt",
        "Feedback.updatedAt",
        "Step.updatedAt",
        "Thread.createdAt",
        "User.updatedAt",
    }, unused
