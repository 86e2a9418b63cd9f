"""The text-search index of jobs (docs/search.md, "How the index works").

SQLite: an external-content FTS5 table with the trigram tokenizer over the four searched
columns (rowid = job id), kept in step with jobs_job by triggers, so every write path (the
ORM, QuerySet.update, the import's raw INSERT) keeps it right. PostgreSQL: pg_trgm GIN indexes
on the very expressions Django's `icontains` compiles to, UPPER(column::text), so the planner
uses them for the list's own queries. Other databases get nothing and search by scanning.
"""

from django.db import migrations

SEARCHED_COLUMNS = ("name", "customer_name", "reference", "file_name")
_COLUMNS = ", ".join(SEARCHED_COLUMNS)
_NEW = ", ".join(f"new.{column}" for column in SEARCHED_COLUMNS)
_OLD = ", ".join(f"old.{column}" for column in SEARCHED_COLUMNS)

SQLITE_FORWARD = [
    f"""CREATE VIRTUAL TABLE job_search USING fts5(
        {_COLUMNS}, content='jobs_job', content_rowid='id', tokenize='trigram'
    )""",
    f"""CREATE TRIGGER job_search_after_insert AFTER INSERT ON jobs_job BEGIN
        INSERT INTO job_search(rowid, {_COLUMNS}) VALUES (new.id, {_NEW});
    END""",
    # An external-content table forgets a row by being told the values it indexed.
    f"""CREATE TRIGGER job_search_after_delete AFTER DELETE ON jobs_job BEGIN
        INSERT INTO job_search(job_search, rowid, {_COLUMNS}) VALUES ('delete', old.id, {_OLD});
    END""",
    f"""CREATE TRIGGER job_search_after_update AFTER UPDATE OF id, {_COLUMNS} ON jobs_job BEGIN
        INSERT INTO job_search(job_search, rowid, {_COLUMNS}) VALUES ('delete', old.id, {_OLD});
        INSERT INTO job_search(rowid, {_COLUMNS}) VALUES (new.id, {_NEW});
    END""",
    # Fill the index from the rows already there.
    "INSERT INTO job_search(job_search) VALUES ('rebuild')",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS job_search_after_insert",
    "DROP TRIGGER IF EXISTS job_search_after_delete",
    "DROP TRIGGER IF EXISTS job_search_after_update",
    "DROP TABLE IF EXISTS job_search",
]

POSTGRESQL_FORWARD = ["CREATE EXTENSION IF NOT EXISTS pg_trgm"] + [
    f"CREATE INDEX IF NOT EXISTS job_{column}_trgm_idx ON jobs_job "
    f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
    for column in SEARCHED_COLUMNS
]
# The extension stays: dropping it could break anything else that came to rely on it.
POSTGRESQL_BACKWARD = [f"DROP INDEX IF EXISTS job_{column}_trgm_idx" for column in SEARCHED_COLUMNS]


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor):
        for statement in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0002_list_indexes"),
    ]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_FORWARD, "postgresql": POSTGRESQL_FORWARD}),
            _run({"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRESQL_BACKWARD}),
        ),
    ]
