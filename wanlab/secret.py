"""The API key: read when used (not at import), masked everywhere it could be printed, scrubbed from
log records."""
from __future__ import annotations

import logging
import os
import weakref


class Secret:
    """Holds a key, or the name of the environment variable to read it from at the moment of use."""

    __slots__ = ("_value", "env", "__weakref__")

    def __init__(self, value: str | None = None, env: str | None = None):
        self._value = value
        self.env = env
        if value:
            _REGISTRY.add(self)

    def reveal(self) -> str:
        value = self._value if self._value else os.environ.get(self.env or "", "")
        if value:
            _REGISTRY.add(self)
        return value

    def __bool__(self) -> bool:
        return bool(self.reveal())

    @property
    def masked(self) -> str:
        value = self.reveal()
        if not value:
            return "<no key>"
        return f"{value[:3]}…{value[-4:]}" if len(value) >= 16 else "…" * 3

    def __repr__(self) -> str:
        src = f" from ${self.env}" if self.env and not self._value else ""
        return f"Secret({self.masked}{src})"

    __str__ = __repr__

    def __reduce__(self):  # a pickled Lab or job must not carry the key
        raise TypeError("wanlab.Secret cannot be pickled")


_REGISTRY: "weakref.WeakSet[Secret]" = weakref.WeakSet()


_PREFIXES = ("wanlab", "httpx", "httpcore", "hpack", "uvicorn", "asyncio")


def _scrub(record: logging.LogRecord) -> logging.LogRecord:
    """Replace any live key in a record's message with its masked form. Installed as a record factory,
    not a logger filter: filters do not see records propagated from child loggers."""
    if not record.name.startswith(_PREFIXES) or not len(_REGISTRY):
        return record
    try:
        msg = record.getMessage()
    except Exception:
        return record
    changed = False
    for s in list(_REGISTRY):
        value = s.reveal()
        if value and value in msg:
            msg = msg.replace(value, s.masked)
            changed = True
    if changed:
        record.msg, record.args = msg, None
    return record


def _install() -> None:
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_wanlab_scrub", False):
        return

    def factory(*args, **kwargs):
        return _scrub(previous(*args, **kwargs))

    factory._wanlab_scrub = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install()
