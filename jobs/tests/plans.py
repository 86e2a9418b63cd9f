"""The plan the database chooses for a query, for tests that check which index it reads."""

from typing import Any

from django.db import connection


def query_plan(sql: str, params: Any = None, *, without: tuple[str, ...] = ()) -> str:
    """SQLite's EXPLAIN QUERY PLAN or PostgreSQL's EXPLAIN of `sql`, a line per node.

    On PostgreSQL the planner's methods named in `without` ("seqscan", "indexscan",
    "bitmapscan") are switched off for the rest of the test's transaction: on a table as small
    as a test's it would rather read everything, which says nothing of the plans at a million
    rows. What is left shows whether an index can serve the query at all."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            return "\n".join(str(row) for row in cursor.fetchall())
        for method in without:
            cursor.execute(f"SET LOCAL enable_{method} = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())
