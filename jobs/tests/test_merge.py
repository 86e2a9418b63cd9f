"""jobs.merge: an edit merged with a change saved meanwhile, field by field."""

import pytest
from django.http import QueryDict

from jobs.forms import JobForm
from jobs.merge import Merge, comparable, merge
from jobs.models import EDITABLE_FIELDS, Job, Printer

BASE = {"name": "Bracket", "priority": 2, "notes": "", "is_business": False, "printer": None}


def test_different_fields_keep_both_sides_without_a_conflict() -> None:
    outcome = merge(BASE, {**BASE, "name": "Mine"}, {**BASE, "notes": "theirs"})
    assert outcome == Merge(mine=frozenset({"name"}), theirs=frozenset({"notes"}))
    assert outcome.clean


def test_the_same_field_changed_differently_is_a_conflict() -> None:
    outcome = merge(BASE, {**BASE, "priority": 9, "name": "Mine"}, {**BASE, "priority": 5})
    assert outcome.conflicts == {"priority"} and outcome.mine == {"name"}
    assert not outcome.clean


def test_the_same_field_changed_to_the_same_value_is_no_conflict() -> None:
    outcome = merge(BASE, {**BASE, "priority": 5}, {**BASE, "priority": 5})
    assert outcome.clean and outcome.mine == {"priority"}


def test_untouched_fields_are_neither_side() -> None:
    assert merge(BASE, BASE, BASE) == Merge()


def test_a_field_missing_from_the_base_counts_as_changed_by_both() -> None:
    outcome = merge({}, {**BASE, "name": "Mine"}, BASE, fields=["name", "priority"])
    assert outcome.conflicts == {"name"} and outcome.mine == {"priority"}


@pytest.mark.parametrize(
    ("form_text", "value"),
    [("2", 2), ("yes", True), ("no", False), ("", None), ("a\nb", "a\r\nb"), ("", "")],
)
def test_comparable_reads_form_text_and_model_values_alike(form_text, value) -> None:
    assert comparable(form_text) == comparable(value)


@pytest.mark.django_db
def test_comparable_names_a_printer_by_its_key(printer) -> None:
    assert comparable(printer) == comparable(str(printer.pk)) == str(printer.pk)


@pytest.mark.django_db
def test_base_from_the_form_against_the_stored_job(make_job, printer) -> None:
    """The base is the hidden values the form was opened with; what was typed is merged
    with the job as stored now, and a conflicting field keeps the typed value."""
    job = make_job(name="Bracket", priority=2, notes="", printer=printer)
    opened = JobForm(instance=job)
    data = QueryDict(mutable=True)
    data.update(dict(opened.base_inputs()))
    data.update(
        {"name": "Mine", "status": "pending", "priority": "9", "notes": "", "file_name": ""}
    )
    data.update({"customer_name": "", "printer": str(printer.pk), "version": "1"})
    other = Printer.objects.create(name="Other")
    job.apply_changes({"priority": 5, "printer": other}, actor=None, origin="ui")

    form = JobForm(data, instance=job)
    stored = {name: getattr(job, name) for name in EDITABLE_FIELDS}
    outcome = merge(form.base_values(), form.posted_values(), stored, EDITABLE_FIELDS)
    assert outcome.mine == {"name"}
    assert outcome.theirs == {"printer"}
    assert outcome.conflicts == {"priority"}

    rebased = JobForm(form.rebased_data(job, outcome.theirs), instance=job)
    assert rebased.data["name"] == "Mine" and rebased.data["priority"] == "9"
    assert rebased.data["printer"] == str(other.pk)
    assert rebased.data["version"] == "2" and rebased.data["base-priority"] == "5"
    assert Job.objects.get(pk=job.pk).name == "Bracket"
