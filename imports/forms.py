from django import forms
from django.core.exceptions import ValidationError

from imports.intake import (
    UploadInfo,
    UploadRejected,
    find_duplicate,
    held_upload,
    inspect_upload,
)
from imports.models import ImportJob, ImportStatus, OnError, OnExisting
from jobs.validation import clean_text

CANCELLATION_REASON_MAX = ImportJob._meta.get_field("cancellation_reason").max_length


class UploadForm(forms.Form):
    """Checks a CSV upload before any ImportJob exists (docs/csv-import.md, "Duplicate files").

    After a valid submit, `upload_info` holds what the intake found; when the file was
    imported before, `duplicate` holds that import and the form stays invalid until it is
    submitted again through "Import anyway" (which confirms that file's hash).
    """

    file = forms.FileField(
        label="CSV file",
        required=False,  # "Import anyway" may send the held upload instead (clean_file)
        help_text="A header row, then one job a row. A name column is required.",
        allow_empty_file=True,  # the intake says why an empty file cannot be imported
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    on_error = forms.ChoiceField(
        label="When a row is invalid",
        choices=OnError.choices,
        initial=OnError.SKIP,
        widget=forms.RadioSelect,
    )
    on_existing = forms.ChoiceField(
        label="When a row's reference matches an existing job",
        choices=OnExisting.choices,
        initial=OnExisting.UPDATE,
        widget=forms.RadioSelect,
    )
    # The SHA-256 of the file the user agreed to import again: set by the "Import anyway"
    # button, so it confirms that file only, not whatever file is chosen next.
    import_anyway = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    # The signed token of the upload kept server-side after the duplicate warning, so
    # "Import anyway" works without choosing the file again (imports.intake.hold_upload).
    held = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: object, user: object = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.upload_info: UploadInfo | None = None
        self.duplicate: ImportJob | None = None
        self.held_token = ""  # set when the file is the held upload, or once it is held

    @classmethod
    def unreadable(cls, exception: Exception) -> "UploadForm":
        """A fresh form saying why Django could not read the upload at all (it refuses a
        multipart part whose headers pass 1 KB, and a file name of about a thousand characters
        does that), shown instead of a bare "Bad Request" page."""
        form = cls()
        form.cleaned_data = {}  # unbound (nothing was read), with the reason on the file field
        if "header size" in str(exception):
            message = (
                "The file's name is too long to upload. Rename the file to something shorter "
                "(a few dozen characters) and choose it again."
            )
        else:
            message = "The upload could not be read. Choose the file again and upload it."
        form.add_error("file", ValidationError(message, code="unreadable"))
        return form

    def clean_file(self) -> object:
        file = self.cleaned_data.get("file")
        if not file:
            token = self.data.get("held", "")
            file = held_upload(token, user=self.user) if token else None
            if file is None and token:
                raise ValidationError(
                    "The file you uploaded is no longer kept (it is removed after an hour). "
                    "Choose it again.",
                    code="held_expired",
                )
            if file is None:
                raise ValidationError("Choose a CSV file to upload.", code="required")
            self.held_token = token
        try:
            self.upload_info = inspect_upload(file)
        except UploadRejected as exc:
            raise ValidationError(str(exc), code="rejected") from exc
        return file

    def clean(self) -> dict:
        cleaned = super().clean()
        info = self.upload_info
        if info is not None and cleaned.get("import_anyway") != info.file_hash:
            self.duplicate = find_duplicate(info.file_hash)
            if self.duplicate is not None:
                raise ValidationError(
                    "This file was imported before. Press “Import anyway” to import it "
                    "a second time.",
                    code="duplicate",
                )
        return cleaned


class ImportListFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "Any status"), *ImportStatus.choices], required=False, label="Status"
    )
    mine = forms.BooleanField(required=False, label="Only my imports")


class ImportCancelForm(forms.Form):
    """Confirming the cancel of an import, with an optional reason kept on the import."""

    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": CANCELLATION_REASON_MAX}),
        help_text="Optional; shown on the import's page.",
    )

    def clean_reason(self) -> str:
        return clean_text(
            self.cleaned_data.get("reason"),
            label="Reason",
            max_length=CANCELLATION_REASON_MAX,
            multiline=True,
        )
