"""What Chainlit's official data layer (ChainlitDataLayer) needs from PostgreSQL:
the single source of truth for the schema checks of every module and role.
REQUIRED_COLUMNS is what the newest supported release (2.12) reads and
writes; older releases need less (ADDED_IN). tests/unit/test_schema_spec.py
re-derives it from the pinned package, tests/integration/test_data_layer_releases.py
drives each supported line's own data layer against the migrated schema."""

from __future__ import annotations

from ansible_collections.chainlit_deploy.stack.plugins.module_utils.chainlit_versions import (
    at_least,
)

# What Chainlit 2.12's ChainlitDataLayer reads and writes: table -> column ->
# PostgreSQL type name (pg_type.typname). The single source of truth
# for checks; tests/test_schema_spec.py re-derives it from the pinned package.
REQUIRED_COLUMNS: dict[str, dict[str, str]] = {
    "User": {
        "id": "text",
        "createdAt": "timestamp",
        "updatedAt": "timestamp",
        "metadata": "jsonb",
        "identifier": "text",
    },
    "Thread": {
        "id": "text",
        "createdAt": "timestamp",
        "updatedAt": "timestamp",
        "deletedAt": "timestamp",
        "name": "text",
        "metadata": "jsonb",
        "userId": "text",
        "tags": "_text",
    },
    "Step": {
        "id": "text",
        "createdAt": "timestamp",
        "updatedAt": "timestamp",
        "parentId": "text",
        "threadId": "text",
        "input": "text",
        "metadata": "jsonb",
        "name": "text",
        "output": "text",
        "type": "StepType",
        "showInput": "text",
        "isError": "bool",
        "startTime": "timestamp",
        "endTime": "timestamp",
    },
    "Element": {
        "id": "text",
        "createdAt": "timestamp",
        "updatedAt": "timestamp",
        "threadId": "text",
        "stepId": "text",
        "metadata": "jsonb",
        "mime": "text",
        "name": "text",
        "objectKey": "text",
        "url": "text",
        "chainlitKey": "text",
        "display": "text",
        "size": "text",
        "language": "text",
        "page": "int4",
        "props": "jsonb",
    },
    "Feedback": {
        "id": "text",
        "createdAt": "timestamp",
        "updatedAt": "timestamp",
        "stepId": "text",
        "name": "text",
        "value": "float8",
        "comment": "text",
    },
}

REQUIRED_STEP_TYPES: tuple[str, ...] = (
    "assistant_message",
    "embedding",
    "llm",
    "retrieval",
    "rerank",
    "run",
    "system_message",
    "tool",
    "undefined",
    "user_message",
)

# Unique indexes the data layer's upserts need (ON CONFLICT targets): without
# them every upsert fails with 42P10 (the user's at login is only logged).
REQUIRED_UNIQUE: dict[str, tuple[tuple[str, ...], ...]] = {
    "User": (("id",), ("identifier",)),
    "Thread": (("id",),),
    "Step": (("id",),),
    "Element": (("id",),),
    "Feedback": (("id",),),
}

# Columns a release reads or writes only from a given release on (read from
# each release's chainlit_data_layer.py): older ones need the rest only.
ADDED_IN: dict[tuple[str, str], str] = {
    ("Thread", "updatedAt"): "2.7.0",
    ("Step", "createdAt"): "2.9.5",
}


def required_columns(version: str = "") -> dict[str, dict[str, str]]:
    """What release ``version`` needs (what every supported release needs when
    empty)."""
    if not version:
        return {table: dict(columns) for table, columns in REQUIRED_COLUMNS.items()}
    return {
        table: {
            column: kind
            for column, kind in columns.items()
            if at_least(version, ADDED_IN.get((table, column), "0"))
        }
        for table, columns in REQUIRED_COLUMNS.items()
    }
