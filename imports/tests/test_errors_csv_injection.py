"""The error report of a real import holds no formula, whatever separator a spreadsheet uses.

Red-team finding: a semicolon-separated import with the row `ok2;pending;1;x;=1+1` yielded an
error CSV line whose raw data, unquoted, became a formula in a spreadsheet that splits on
semicolons.
"""

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from imports.models import ImportJob
from jobs.tests.test_csv_safety import assert_no_formula_cell

pytestmark = pytest.mark.django_db


def test_error_csv_of_a_semicolon_import_has_no_formula_cell(
    client_for: Callable[..., Client], run_csv: Callable[..., ImportJob], uploader
) -> None:
    import_job = run_csv(
        "name;status;priority;is_business;notes\n"
        "ok1;pending;1;no;fine\n"
        "ok2;pending;1;x;=1+1\n"
        "=2+2;pending;-3;no;@SUM(A1)\n"
    )
    assert import_job.error_count == 2
    response = client_for(uploader).get(reverse("imports:errors_csv", args=[import_job.pk]))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "ok2;pending;1;x;'=1+1" in text
    assert_no_formula_cell(text)
