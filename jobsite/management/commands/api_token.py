"""`manage.py api_token create|list|revoke`: API tokens for programs (docs/api.md, "Tokens").

Exit codes: 0 done, 1 no such token, 2 bad usage (an unknown user, a bad option)."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.cli import user_from_option
from jobsite.models import ApiToken


class Command(BaseCommand):
    help = "Create, list or revoke API tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Create a token; its secret is shown once.")
        create.add_argument("--user", required=True)
        create.add_argument("--name", required=True)
        create.add_argument("--expires-days", type=int, default=None)
        create.add_argument("--output", choices=("text", "json"), default="text")
        listing = actions.add_parser("list", help="List tokens (never their secrets).")
        listing.add_argument("--user", default=None)
        listing.add_argument("--output", choices=("text", "json"), default="text")
        revoke = actions.add_parser("revoke", help="Revoke a token by its id.")
        revoke.add_argument("id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _create(self, options: dict[str, Any]) -> None:
        user = user_from_option(options["user"], returncode=2)
        days = options["expires_days"]
        if days is not None and not 1 <= days <= 3650:
            raise CommandError("--expires-days must be from 1 to 3650.", returncode=2)
        if not options["name"].strip():
            raise CommandError("--name must not be empty.", returncode=2)
        token, secret = ApiToken.issue(user=user, name=options["name"], expires_days=days)
        if options["output"] == "json":
            self.stdout.write(json.dumps({"token": secret, **_record(token)}))
        else:
            self.stdout.write(secret)
            self.stderr.write(
                f"Token {token.pk} “{token.name}” for {user.get_username()}: copy it now, "
                "it is not shown again."
            )

    def _list(self, options: dict[str, Any]) -> None:
        tokens = ApiToken.objects.select_related("user").order_by("id")
        if options["user"]:
            tokens = tokens.filter(user=user_from_option(options["user"], returncode=2))
        records = [_record(token) for token in tokens]
        if options["output"] == "json":
            self.stdout.write(json.dumps(records))
            return
        for record in records:
            self.stdout.write(
                "{id}\t{user}\t{name}\t{prefix}…\t{state}\tcreated {created_at}\t"
                "last used {last_used_at}\texpires {expires_at}".format(**record)
            )

    def _revoke(self, options: dict[str, Any]) -> None:
        token = ApiToken.objects.filter(pk=options["id"]).first()
        if token is None:
            raise CommandError(f"No token with id {options['id']}.", returncode=1)
        token.revoke()
        self.stdout.write(f"Revoked token {token.pk} “{token.name}”.")


def _record(token: ApiToken) -> dict[str, Any]:
    def when(moment: Any) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "id": token.pk,
        "user": token.user.get_username(),
        "name": token.name,
        "prefix": token.prefix,
        "state": token.state,
        "created_at": when(token.created_at),
        "last_used_at": when(token.last_used_at),
        "expires_at": when(token.expires_at),
        "revoked_at": when(token.revoked_at),
    }
