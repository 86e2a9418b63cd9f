"""The transition table of docs/jobs.md, "Status rules", written out independently of
jobs.status, for tests."""

DOCS_TABLE = {
    "pending": {"scheduled", "running", "cancelled"},
    "scheduled": {"pending", "running", "cancelled"},
    "running": {"completed", "failed", "cancelled"},
    "failed": {"pending", "cancelled"},
    "cancelled": {"pending"},
    "completed": {"pending"},
}
