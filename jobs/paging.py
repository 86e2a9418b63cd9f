"""Cursor (keyset) paging of job lists, for the list page, the commands and every other list.

    page = paginate(queryset, sort="-updated", cursor=token, limit=50)
    page.items, page.next_cursor, page.prev_cursor, page.has_next, page.has_prev

A page is one query of `limit + 1` rows: `WHERE (sort value, id) beyond the cursor ORDER BY
sort value, id LIMIT limit + 1` (the extra row says whether there is more). The tie-breaker
`id` runs in the direction of the sort key, so one (field, id) index serves both directions
and every page, however deep, starts with an index seek instead of an OFFSET. Rows inserted
or changed between page loads never make a page repeat or skip a row that stayed in place.

A cursor is opaque to its users: URL-safe base64 of a small JSON object naming the sort and
the (value, id) position after or before which the page starts. It is checked on the way in:
a cursor that cannot be decoded, or was made for another sort, raises InvalidCursor with a
message for the user. Nullable sort fields sort NULL after every value ascending (before
every value descending), PostgreSQL's order, which its plain index serves in both directions.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.paginator import Paginator
from django.db import models
from django.db.models import F, Q, QuerySet
from django.db.models.expressions import OrderBy
from django.utils.functional import cached_property

from jobs.filters import SORT_FIELDS

DEFAULT_SORT = "-updated"
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
# Counting stops here: COUNT(*) reads every matching row (on PostgreSQL, every row of a big
# filtered table) on every page view. Lists say "10,000+" instead.
COUNT_CAP = 10_000
# A name is at most 200 characters; its cursor stays far below this.
MAX_CURSOR_LENGTH = 2_000
DAMAGED = "The page cursor is not valid: it was changed or cut short. Start from the first page."


class InvalidCursor(ValueError):
    """A cursor that this module did not make for this sort; the message is for the user."""


@dataclass(frozen=True)
class CursorPage:
    items: list[Any]
    next_cursor: str | None
    prev_cursor: str | None
    has_next: bool
    has_prev: bool


@dataclass(frozen=True)
class SortKey:
    key: str  # as in the query string: "-updated"
    field: models.Field
    descending: bool

    @property
    def name(self) -> str:
        return self.field.name

    def ordering(self, *, backwards: bool) -> list[OrderBy]:
        """ORDER BY value, id in the sort's direction (reversed to walk backwards); NULL last
        ascending, first descending."""
        descending = self.descending != backwards
        if descending:
            value = F(self.name).desc(nulls_first=True if self.field.null else None)
            return [value, F("id").desc()]
        value = F(self.name).asc(nulls_last=True if self.field.null else None)
        return [value, F("id").asc()]


def parse_sort(sort: str, model: type[models.Model]) -> SortKey:
    """The sort key of `sort` ("name", "-updated", a key of SORT_FIELDS with an optional `-`);
    ValueError naming the valid ones for anything else."""
    key = sort.removeprefix("-")
    if key not in SORT_FIELDS:
        valid = ", ".join(sorted(SORT_FIELDS))
        raise ValueError(f"Unknown sort {sort!r}: use one of {valid}, with - for descending.")
    field = model._meta.get_field(SORT_FIELDS[key])
    return SortKey(key=sort, field=field, descending=sort.startswith("-"))


def paginate(
    queryset: QuerySet,
    *,
    sort: str = DEFAULT_SORT,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    parts: Sequence[Q] = (),
) -> CursorPage:
    """The page of `queryset` (filtered, not yet sorted) in `sort` order that `cursor` points
    at, or the first page without one. Raises InvalidCursor for a cursor that is not one of
    this sort's, ValueError for an unknown sort or a limit outside 1..MAX_LIMIT.

    `parts`, conditions that split `queryset` into pieces an index lists in sort order each
    (one status of several: JobFilter.parts), let a page be found piece by piece. A database
    cannot walk `status IN (a, b)` in updated order: it reads every job of both statuses and
    sorts them. Each piece's next `limit` + 1 keys are an index walk, and the page is among
    them, so the page query only sorts those."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"The limit must be between 1 and {MAX_LIMIT}.")
    key = parse_sort(sort, queryset.model)
    backwards, position = decode_cursor(cursor, key) if cursor else (False, None)
    rows = queryset.order_by(*key.ordering(backwards=backwards))
    if position is not None:
        rows = rows.filter(_beyond(key, *position, descending=key.descending != backwards))
    if len(parts) > 1:
        keys = rows.select_related(None).values_list("pk", flat=True)
        found = [pk for part in parts for pk in keys.filter(part)[: limit + 1]]
        rows = rows.filter(pk__in=found)
    items = list(rows[: limit + 1])
    more = len(items) > limit
    items = items[:limit]
    if backwards:
        items.reverse()
        # Walking back from the last page, the first page may come out short: it is still
        # the first page, and refilling it would show rows of the page after it again.
        has_prev = more
        has_next = position is not None and bool(items)
    else:
        has_prev = cursor is not None and bool(items)
        has_next = more
    return CursorPage(
        items=items,
        next_cursor=encode_cursor(key, items[-1], after=True) if has_next else None,
        prev_cursor=encode_cursor(key, items[0], after=False) if has_prev else None,
        has_next=has_next,
        has_prev=has_prev,
    )


def sorted_by(queryset: QuerySet, sort: str) -> QuerySet:
    """`queryset` in the order its pages list it (for an export of every page)."""
    return queryset.order_by(*parse_sort(sort, queryset.model).ordering(backwards=False))


def last_page_cursor(sort: str) -> str:
    """A cursor to the last page of `sort`: the page before the end."""
    return _encode({"sort": sort, "before": None})


def encode_cursor(key: SortKey, item: Any, *, after: bool) -> str:
    """The cursor of the page after (or before) `item`, a model instance of the list."""
    value = getattr(item, key.field.attname)
    if isinstance(value, datetime):
        value = value.isoformat()
    return _encode({"sort": key.key, "after" if after else "before": [value, item.pk]})


def decode_cursor(cursor: str, key: SortKey) -> tuple[bool, tuple[Any, int] | None]:
    """(backwards, (value, id) or None for the end) from a cursor of `key`'s sort."""
    payload = _decode(cursor)
    shapes = ({"sort", "after"}, {"sort", "before"})
    if not isinstance(payload, dict) or set(payload) not in shapes:
        raise InvalidCursor(DAMAGED)
    if not isinstance(payload["sort"], str):
        raise InvalidCursor(DAMAGED)
    if payload["sort"] != key.key:
        raise InvalidCursor(
            f"The page cursor belongs to another sort order ({payload['sort']!r}, not "
            f"{key.key!r}). Start from the first page."
        )
    backwards = "before" in payload
    position = payload["before"] if backwards else payload["after"]
    if position is None and backwards:
        return True, None
    if not (isinstance(position, list) and len(position) == 2):
        raise InvalidCursor(DAMAGED)
    value, pk = position
    if type(pk) is not int or pk < 1:
        raise InvalidCursor(DAMAGED)
    return backwards, (_field_value(key.field, value), pk)


def count_capped(queryset: QuerySet, cap: int = COUNT_CAP) -> int:
    """How many rows `queryset` has, counting no further than `cap` + 1 (so more than `cap`
    reads as `cap` + 1): one COUNT over a LIMITed id subquery."""
    rows = queryset.select_related(None).order_by().values("pk")
    return rows[: cap + 1].count()


class CappedPaginator(Paginator):
    """A numbered paginator (the Django admin's) whose count stops after `cap` + 1 rows and
    that offers pages up to the cap, which also bounds the OFFSET a page can ask for."""

    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        return count_capped(self.object_list, self.cap)

    @property
    def is_capped(self) -> bool:
        return self.count > self.cap

    @cached_property
    def num_pages(self) -> int:
        hits = min(self.count, self.cap)
        if hits == 0 and not self.allow_empty_first_page:
            return 0
        return max(1, math.ceil(max(hits - self.orphans, 1) / self.per_page))


def _beyond(key: SortKey, value: Any, pk: int, *, descending: bool) -> Q:
    """Rows after (value, pk) in the walking direction. `f >= v AND (f > v OR id > pk)` rather
    than the plain OR, so the database seeks the index to `v` instead of reading it from the
    start; NULL counts as above every value."""
    name = key.name
    if value is None:
        if descending:  # NULLs come first: the rest of them, then every value
            return Q(**{f"{name}__isnull": True, "id__lt": pk}) | Q(**{f"{name}__isnull": False})
        return Q(**{f"{name}__isnull": True, "id__gt": pk})
    if descending:
        condition = Q(**{f"{name}__lte": value}) & (Q(**{f"{name}__lt": value}) | Q(id__lt=pk))
        return condition  # NULLs came first: none are left
    condition = Q(**{f"{name}__gte": value}) & (Q(**{f"{name}__gt": value}) | Q(id__gt=pk))
    if key.field.null:
        condition |= Q(**{f"{name}__isnull": True})
    return condition


def _field_value(field: models.Field, value: Any) -> Any:
    """A cursor's sort value as the field's Python value; InvalidCursor when it cannot be."""
    damaged = InvalidCursor(DAMAGED)
    if value is None:
        if not field.null:
            raise damaged
        return None
    if isinstance(field, models.DateTimeField):
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise damaged
        return parsed
    if isinstance(field, models.IntegerField):
        if type(value) is not int:
            raise damaged
        return value
    if not isinstance(value, str) or len(value) > (field.max_length or MAX_CURSOR_LENGTH):
        raise damaged
    return value


def _encode(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode("ascii")


def _decode(cursor: str) -> Any:
    if not cursor.isascii() or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor(DAMAGED)
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        return json.loads(raw.decode())
    except (binascii.Error, ValueError, RecursionError):
        raise InvalidCursor(DAMAGED) from None
