from typing import Any

from django import forms
from django.core.validators import MaxLengthValidator, ProhibitNullCharactersValidator

from jobs.models import EDITABLE_FIELDS, Job, Printer
from jobs.status import JobStatus, next_statuses
from jobs.validation import (
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


class JobForm(forms.ModelForm):
    """The editable fields of a job (docs/jobs.md, "Editing and versions") with their rules.

    Carries the `version` the edit is based on, so a save over someone else's change is refused.
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
