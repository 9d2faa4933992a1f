"""DashScope's task times ("2026-04-02 14:13:41.783", zone unstated): read on a naive UTC reading, used only
as differences (queue and run seconds) or anchored to the client's clock through the submit time."""

from __future__ import annotations

from datetime import datetime, timezone


def host_clock(value: str | None) -> float | None:
    """A DashScope time as seconds on a naive UTC reading; None when absent or not in that form."""
    if not value:
        return None
    head = value[:23]
    try:
        # fromisoformat is C and reads this form on Python >= 3.11 (every poll reads two of these times)
        parsed = datetime.fromisoformat(head) if "." in head else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is not None:
        try:  # Python 3.10's fromisoformat wants 3 or 6 decimals; strptime reads any
            parsed = datetime.strptime(head, "%Y-%m-%d %H:%M:%S.%f")
        except ValueError:
            return None
    return parsed.replace(tzinfo=timezone.utc).timestamp()
