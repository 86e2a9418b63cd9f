"""Merging an edit with a change someone else saved meanwhile (docs/jobs.md, "Editing and
versions").

An edit is based on the values the form was opened with (the base). When the job moved on
before the save, each field is decided on its own: a field only one side changed takes that
side's value; a field both sides changed to the same value is no conflict; a field both sides
changed to different values is a conflict, for the person editing to decide. Nothing typed
is dropped: a conflicting field keeps the typed value until its owner chooses.

Values are compared as `comparable` text, so a value read back from a form's hidden field
and the same value read from the model compare equal.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models


def comparable(value: Any) -> str:
    """`value` as the text a merge compares: a related object by its key, yes/no for a
    boolean, "" for nothing, anything else as its text with LF line breaks (a browser posts
    a text area's as CR LF)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, models.Model):
        return str(value.pk)
    return str(value).replace("\r\n", "\n")


@dataclass(frozen=True)
class Merge:
    """The outcome of merging `mine` with `theirs` over `base`, field by field."""

    mine: frozenset[str] = field(default_factory=frozenset)
    """Fields only this edit changed (or both changed to the same value): keep mine."""
    theirs: frozenset[str] = field(default_factory=frozenset)
    """Fields only the other change touched: take theirs."""
    conflicts: frozenset[str] = field(default_factory=frozenset)
    """Fields both changed to different values: the person editing chooses."""

    @property
    def clean(self) -> bool:
        """True when the edit can be saved over their change without asking."""
        return not self.conflicts


def merge(
    base: Mapping[str, Any],
    mine: Mapping[str, Any],
    theirs: Mapping[str, Any],
    fields: Iterable[str] | None = None,
) -> Merge:
    """Decide each of `fields` (default: the base's) between this edit (`mine`) and the job
    as stored now (`theirs`), both descended from `base`. Values are compared by
    `comparable`; a field missing from `base` counts as changed by both sides."""
    mine_only: set[str] = set()
    theirs_only: set[str] = set()
    conflicts: set[str] = set()
    for name in base if fields is None else fields:
        old = comparable(base[name]) if name in base else None
        ours, others = comparable(mine.get(name)), comparable(theirs.get(name))
        if ours == others:
            if ours != old:
                mine_only.add(name)
        elif ours == old:
            theirs_only.add(name)
        elif others == old:
            mine_only.add(name)
        else:
            conflicts.add(name)
    return Merge(frozenset(mine_only), frozenset(theirs_only), frozenset(conflicts))
