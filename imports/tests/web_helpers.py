"""Helpers for the import page tests: ImportJob rows made directly, without the engine."""

from typing import Any

from imports.models import ImportJob


def make_import(**fields: Any) -> ImportJob:
    fields.setdefault("original_filename", "jobs.csv")
    fields.setdefault("file_hash", "0" * 64)
    fields.setdefault("estimated_rows", 100)
    return ImportJob.objects.create(**fields)
