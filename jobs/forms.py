from collections.abc import Iterable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, ProhibitNullCharactersValidator
from django.http import QueryDict

from jobs.merge import comparable
from jobs.models import EDITABLE_FIELDS, Job, Printer
from jobs.status import JobStatus, next_statuses
from jobs.validation import (
    CUSTOMER_MAX,
    FILE_NAME_MAX,
    NAME_MAX,
    NOTES_MAX,
    PRIORITY_MAX,
    PRIORITY_MIN,
    check_printer_assignable,
    check_status,
    clean_customer,
    clean_file_name,
    clean_name,
    clean_notes,
    clean_priority,
    clean_text,
)

CANCELLATION_REASON_MAX = Job._meta.get_field("cancellation_reason").max_length
VERSION_MISSING = (
    "This form did not say which version of the job it edits, so saving it could overwrite "
    "someone else's change. Nothing was saved: reload the job and edit it again."
)
# Each field's rule, shown under it before anything is typed (docs/jobs.md, "Fields").
FIELD_RULES = {
    "name": f"Required; at most {NAME_MAX} characters.",
    "priority": f"A whole number {PRIORITY_MIN}–{PRIORITY_MAX}; {PRIORITY_MAX} is the most urgent.",
    "customer_name": f"Required for business jobs; at most {CUSTOMER_MAX} characters.",
    "notes": f"Optional; at most {NOTES_MAX} characters.",
    "file_name": f"A file name, not a link; at most {FILE_NAME_MAX} characters.",
    "printer": "Optional; only active printers can be newly assigned.",
}
# The hidden fields holding the values the form was opened with (see JobForm.base_values).
BASE_PREFIX = "base-"
# The choice between mine and theirs for a field both sides changed, and the list of them.
KEEP_PREFIX = "keep-"
CONFLICT_FIELD = "conflict"
KEEP_MINE, KEEP_THEIRS = "mine", "theirs"


class JobForm(forms.ModelForm):
    """The editable fields of a job (docs/jobs.md, "Editing and versions") with their rules.

    Carries the `version` the edit is based on and the values it was opened with (hidden
    `base-<field>` inputs), so a save over someone else's change can be merged with it
    (jobs/merge.py) instead of overwriting it.
    """

    # A text field, so a missing or malformed version becomes one clear form error (see
    # clean_version) rather than an integer field's error on a hidden input nobody sees.
    version = forms.CharField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Job
        fields = EDITABLE_FIELDS

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        current = self.instance.status if self.instance.pk else None
        allowed = next_statuses(current) if current else JobStatus.values
        self.fields["status"].choices = [(s, JobStatus(s).label) for s in allowed]
        self.fields["printer"].queryset = Printer.objects.filter(is_active=True) | (
            Printer.objects.filter(pk=self.instance.printer_id)
        )
        self.fields["printer"].error_messages["invalid_choice"] = (
            "Choose an active printer: that one is inactive or no longer exists."
        )
        # Let jobs.validation word the required, length and character rules, not Django's
        # generic messages.
        for name in ("name", "customer_name", "notes", "file_name"):
            field = self.fields[name]
            field.required = False
            field.validators = [
                v
                for v in field.validators
                if not isinstance(v, MaxLengthValidator | ProhibitNullCharactersValidator)
            ]
        self.fields["name"].widget.attrs["required"] = True
        self.fields["priority"].widget.attrs.update(min=PRIORITY_MIN, max=PRIORITY_MAX)
        self.fields["notes"].widget = forms.Textarea(attrs={"rows": 3, "maxlength": NOTES_MAX})
        self.fields["printer"].empty_label = "No printer"
        for name, rule in FIELD_RULES.items():
            self.fields[name].help_text = rule
        if self.instance.pk and not self.is_bound:
            self.initial["version"] = self.instance.version

    def clean_version(self) -> int | None:
        """The version the edit is based on. Editing a stored job requires it, so no save can
        skip the check against someone else's change; a new job has none."""
        if not self.instance.pk:
            return None
        try:
            return int(self.cleaned_data.get("version") or "")
        except ValueError:
            self.add_error(None, forms.ValidationError(VERSION_MISSING, code="version"))
            return None

    def clean_name(self) -> str:
        return clean_name(self.cleaned_data.get("name"))

    def clean_priority(self) -> int:
        return clean_priority(self.cleaned_data.get("priority"))

    def clean_notes(self) -> str:
        return clean_notes(self.cleaned_data.get("notes"))

    def clean_file_name(self) -> str:
        return clean_file_name(self.cleaned_data.get("file_name"))

    def clean_status(self) -> str:
        status = self.cleaned_data["status"]
        check_status(self.instance.status if self.instance.pk else None, status)
        return status

    def clean_printer(self) -> Printer | None:
        printer = self.cleaned_data.get("printer")
        check_printer_assignable(printer, self.instance.printer_id if self.instance.pk else None)
        return printer

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "is_business" in data and "customer_name" in data:
            try:
                data["customer_name"] = clean_customer(data["is_business"], data["customer_name"])
            except forms.ValidationError as error:
                self.add_error("customer_name", error)
        return data

    def _post_clean(self) -> None:
        # Leave the instance untouched: Job.apply_changes diffs the cleaned values against
        # the stored ones, and the rules above already cover the model's constraints.
        pass

    def changes(self) -> dict[str, Any]:
        """The edited values, to hand to Job.apply_changes."""
        return {name: self.cleaned_data[name] for name in EDITABLE_FIELDS}

    def base_inputs(self) -> list[tuple[str, str]]:
        """The hidden `base-<field>` inputs: the values this form was opened with, carried
        through a re-display (a bound form keeps the posted ones)."""
        if self.is_bound and BASE_PREFIX + EDITABLE_FIELDS[0] in self.data:
            return [(BASE_PREFIX + n, self.data.get(BASE_PREFIX + n, "")) for n in EDITABLE_FIELDS]
        return [(BASE_PREFIX + n, comparable(getattr(self.instance, n))) for n in EDITABLE_FIELDS]

    def base_values(self) -> dict[str, str]:
        """The posted values the form was opened with, by field; a form without them (opened
        before they existed) gives none, so each field counts as changed on both sides."""
        return {
            name: self.data[BASE_PREFIX + name]
            for name in EDITABLE_FIELDS
            if BASE_PREFIX + name in self.data
        }

    def posted_values(self) -> dict[str, Any]:
        """The posted value of each editable field as its Python value where it reads as one
        (the typed text otherwise, and a printer by its key), unchecked: what was typed,
        to compare with the base and the stored job."""
        values: dict[str, Any] = {}
        for name in EDITABLE_FIELDS:
            field = self.fields[name]
            raw = field.widget.value_from_datadict(self.data, self.files, self.add_prefix(name))
            if isinstance(field, forms.ModelChoiceField):
                values[name] = raw or None
                continue
            try:
                values[name] = field.to_python(raw)
            except ValidationError:
                values[name] = raw
        return values

    def rebased_data(self, job: Job, take_theirs: Iterable[str]) -> QueryDict:
        """This form's data moved onto `job` as stored now: its version and values become
        the base, and the fields in `take_theirs` take the stored values; the other fields
        keep what was typed."""
        data = self.data.copy()
        data["version"] = str(job.version)
        for name in EDITABLE_FIELDS:
            data[BASE_PREFIX + name] = comparable(getattr(job, name))
        for name in take_theirs:
            set_form_value(data, name, getattr(job, name))
        return data

    @staticmethod
    def awaiting_choice(data: QueryDict) -> list[str]:
        """The conflicting fields the posted form asked about and got no choice for."""
        return [
            name
            for name in data.getlist(CONFLICT_FIELD)
            if name in EDITABLE_FIELDS
            and data.get(KEEP_PREFIX + name) not in (KEEP_MINE, KEEP_THEIRS)
        ]

    @staticmethod
    def apply_choices(data: QueryDict, job: Job) -> QueryDict:
        """The posted data with each conflict decided: a field whose choice is theirs takes
        the job's stored value, one whose choice is mine keeps what was typed."""
        data = data.copy()
        for name in data.getlist(CONFLICT_FIELD):
            if name in EDITABLE_FIELDS and data.get(KEEP_PREFIX + name) == KEEP_THEIRS:
                set_form_value(data, name, getattr(job, name))
            data.pop(KEEP_PREFIX + name, None)
        data.pop(CONFLICT_FIELD, None)
        return data


def set_form_value(data: QueryDict, name: str, value: Any) -> None:
    """Put `value` into form `data` as the job form's widget for `name` posts it."""
    if isinstance(value, bool):
        if value:
            data[name] = "on"
        else:
            data.pop(name, None)
    else:
        data[name] = comparable(value)


class CancelForm(forms.Form):
    """Confirming a cancellation: an optional reason, and the `version` the user looked at."""

    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": CANCELLATION_REASON_MAX}),
        help_text="Optional; kept with the job's history.",
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def clean_reason(self) -> str:
        return clean_text(
            self.cleaned_data.get("reason"),
            label="Reason",
            max_length=CANCELLATION_REASON_MAX,
            multiline=True,
        )
