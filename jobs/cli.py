"""What the management commands of every app share: the --user option's lookup."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def user_from_option(username: str | None, *, returncode: int) -> Any:
    """The user named by a command's --user option (None without one); an unknown name is a
    usage error with `returncode`."""
    if username is None:
        return None
    User = get_user_model()
    try:
        return User.objects.get(**{User.USERNAME_FIELD: username})
    except User.DoesNotExist:
        raise CommandError(f"No user named {username!r}.", returncode=returncode) from None
