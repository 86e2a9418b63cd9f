"""SPEC section 2's transition table, written out independently of jobs.status, for tests."""

SPEC_TABLE = {
    "pending": {"scheduled", "running", "cancelled"},
    "scheduled": {"pending", "running", "cancelled"},
    "running": {"completed", "failed", "cancelled"},
    "failed": {"pending", "cancelled"},
    "cancelled": {"pending"},
    "completed": {"pending"},
}
