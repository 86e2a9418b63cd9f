"""Helpers for the import page tests: ImportJob rows made directly, without the engine."""

from typing import Any

from django.test import Client

from imports.models import ImportJob


def make_import(**fields: Any) -> ImportJob:
    fields.setdefault("original_filename", "jobs.csv")
    fields.setdefault("file_hash", "0" * 64)
    fields.setdefault("estimated_rows", 100)
    return ImportJob.objects.create(**fields)


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def htmx_client_for(user: Any) -> Client:
    """A client whose requests carry the HX-Request header, as htmx sends them."""
    client = Client(headers={"HX-Request": "true"})
    client.force_login(user)
    return client
