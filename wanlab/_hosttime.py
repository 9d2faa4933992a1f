"""DashScope's task times ("2026-04-02 14:13:41.783", zone unstated): read on a naive UTC reading, used only
as differences (queue and run seconds) or anchored to the client's clock through the submit time."""

from __future__ import annotations

from datetime import datetime, timezone


def host_clock(value: str | None) -> float | None:
    """A DashScope time as seconds on a naive UTC reading; None when absent or not in that form."""
    if not value:
        return None
    try:
        return datetime.strptime(value[:23], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None
