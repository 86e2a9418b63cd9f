"""Thin task entry points for the cluster: each calls one domain function."""

from imports.importer import resume_stalled_imports, run_import
from imports.retention import cleanup_imports


def run_import_task(import_id: str) -> None:
    run_import(import_id)


def resume_stalled_imports_task() -> list[str]:
    """Run by the `imports-resume-stalled` schedule: re-enqueue imports whose worker died."""
    return resume_stalled_imports()


def cleanup_imports_task(actor: str = "schedule") -> dict:
    """Run by the `imports-retention` schedule and the Cluster page's "Run retention now"."""
    result = cleanup_imports(actor=actor)
    return {
        "imports": result.imports,
        "error_records": result.error_records,
        "events": result.events,
        "files": result.files,
        "orphan_files": result.orphan_files,
        "held_uploads": result.held_uploads,
    }
