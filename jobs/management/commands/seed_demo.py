"""Demo data: printers (including those the sample CSV files name), a few hundred jobs and a
demo login with every permission. Safe to run again: nothing is duplicated, and the whole login
("demo / <password>") is kept in var/demo-login.txt so it can be printed again."""

import random
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from jobs.models import Job, JobEvent, Printer
from jobs.status import JobStatus

DEMO_USERNAME = "demo"
PRINTERS = [
    ("Prusa MK4 #1", True),
    ("Prusa MK4 #2", True),
    ("Bambu X1C", True),
    ("Bambu P1S", True),
    ("Ultimaker S5", True),
    ("Form 3", True),
    ("Ender 3 (retired)", False),
]
JOB_COUNT = 300
PARTS = ["Bracket", "Gear", "Housing", "Knob", "Clip", "Hinge", "Spacer", "Mount", "Lid", "Badge"]
CUSTOMERS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries"]


def credentials_file() -> Path:
    return settings.VAR_DIR / "demo-login.txt"


def login_line(password: str) -> str:
    """The login as printed and as kept in the credentials file."""
    return f"{DEMO_USERNAME} / {password}"


class Command(BaseCommand):
    help = "Create demo printers, jobs and a demo login (idempotent); print the login."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            printers = self.ensure_printers()
            user, password = self.ensure_user()
            created = self.ensure_jobs(printers, user)
        self.stdout.write(f"Printers: {len(printers)}; demo jobs created now: {created}.")
        self.stdout.write(self.style.SUCCESS(f"Demo login: {login_line(password)}"))

    def ensure_printers(self) -> list[Printer]:
        printers = []
        for name, active in PRINTERS:
            printer, _ = Printer.objects.get_or_create(name=name, defaults={"is_active": active})
            printers.append(printer)
        return printers

    def ensure_user(self) -> tuple[Any, str]:
        User = get_user_model()
        user = User.objects.filter(username=DEMO_USERNAME).first()
        stored = credentials_file()
        password = ""
        if user and stored.exists():
            username, _, kept = stored.read_text().strip().partition(" / ")
            # Not a whole login (an older file held the password alone): make a new one.
            password = kept if username == DEMO_USERNAME else ""
        if user is None:
            user = User.objects.create_user(DEMO_USERNAME, email="demo@example.com")
        # Every run, so a demo user made before a permission existed gets it too.
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label__in=["jobs", "imports", "django_q"])
        )
        if password:
            return user, password
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.is_staff = True
        user.save()
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_text(login_line(password) + "\n")
        stored.chmod(0o600)
        return user, password

    def ensure_jobs(self, printers: list[Printer], user: Any) -> int:
        existing = set(
            Job.objects.filter(reference__startswith="DEMO-").values_list("reference", flat=True)
        )
        rng = random.Random(42)
        active = [p for p in printers if p.is_active]
        new_jobs = []
        for number in range(1, JOB_COUNT + 1):
            reference = f"DEMO-{number:04d}"
            if reference in existing:
                continue
            is_business = rng.random() < 0.4
            status = rng.choice(JobStatus.values)
            new_jobs.append(
                Job(
                    name=f"{rng.choice(PARTS)} v{rng.randint(1, 9)}",
                    status=status,
                    priority=rng.randint(0, 10),
                    is_business=is_business,
                    customer_name=rng.choice(CUSTOMERS) if is_business else "",
                    file_name=f"part_{number}.3mf",
                    printer=rng.choice(active) if rng.random() < 0.85 else None,
                    reference=reference,
                    created_by=user,
                    updated_by=user,
                )
            )
        Job.objects.bulk_create(new_jobs, batch_size=500)
        created = Job.objects.filter(reference__in=[job.reference for job in new_jobs])
        JobEvent.objects.bulk_create(
            JobEvent(
                job=job,
                actor=user,
                kind=JobEvent.Kind.CREATED,
                changes={},
                origin=JobEvent.Origin.CLI,
            )
            for job in created
        )
        return len(new_jobs)
