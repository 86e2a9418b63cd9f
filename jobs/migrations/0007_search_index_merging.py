"""SQLite's search index merges its segments between writes, not inside them (docs/search.md,
"How the index works"): FTS5's automatic merging is turned off, and jobs.search.merge_index
does the merging in short transactions of its own."""

from django.db import migrations


def _set_automerge(value: int):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "sqlite":
            schema_editor.execute(
                "INSERT INTO job_search(job_search, rank) VALUES ('automerge', %s)", [value]
            )

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0006_bulk_runs"),
    ]

    operations = [
        # 4 is FTS5's own default.
        migrations.RunPython(_set_automerge(0), _set_automerge(4)),
    ]
