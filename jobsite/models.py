"""API tokens (docs/api.md, "Tokens"): per-user secrets for programs, stored as a SHA-256
digest. A token is a long random secret, so a fast digest is as safe as a slow password hash
and costs nothing on every request."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

TOKEN_PREFIX = "jst_"
# The first characters of a token, kept in clear so a list can tell tokens apart.
SHOWN_CHARS = 8
# Last-used times are written at most this often, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self) -> ApiTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=SHOWN_CHARS + len(TOKEN_PREFIX), editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(
        cls, *, user: Any, name: str, expires_days: int | None = None
    ) -> tuple[ApiToken, str]:
        """A new token for `user`; returns it with its secret, which is shown once and
        never stored."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = timezone.now()
        token = cls.objects.create(
            user=user,
            name=name.strip()[:100] or "API token",
            prefix=secret[: len(TOKEN_PREFIX) + SHOWN_CHARS],
            digest=token_digest(secret),
            created_at=now,
            expires_at=now + timedelta(days=expires_days) if expires_days else None,
        )
        return token, secret

    @classmethod
    def authenticate(cls, secret: str) -> ApiToken | None:
        """The usable token with this secret (its user active), noting when it was used."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        try:
            # get(): the digest is unique, so no ORDER BY (first() would sort by the Meta order).
            token = (
                cls.objects.usable()
                .select_related("user")
                .get(digest=token_digest(secret), user__is_active=True)
            )
        except cls.DoesNotExist:
            return None
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        return "expired" if self.is_expired else "active"

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
