"""The API key: read when used (not at import), masked everywhere it could be printed, scrubbed from
log records."""
from __future__ import annotations

import logging
import os
import weakref

from .errors import ConfigError


class Secret:
    """Holds a key, or the name of the environment variable to read it from at the moment of use."""

    __slots__ = ("_value", "env", "__weakref__")

    def __init__(self, value: str | None = None, env: str | None = None):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"api_key must be a str, got {type(value).__name__}")
        self._value = _clean(value, "api_key") if value else value
        self.env = env
        if value:
            _REGISTRY.add(self)

    def reveal(self) -> str:
        value = self._value if self._value else _clean(os.environ.get(self.env or "", ""), f"${self.env}")
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


def _clean(value: str, where: str) -> str:
    """A key read from a file or pasted ends in a newline more often than not: strip the ends. A control
    character inside would make httpx refuse the header with the whole key in its message, so refuse it
    here, in words that never quote the key."""
    value = value.strip()
    bad = [c for c in value if ord(c) < 32 or ord(c) == 127 or c.isspace()]
    if bad:
        names = sorted({_CONTROL_NAMES.get(c, f"U+{ord(c):04X}") for c in bad})
        raise ConfigError(f"{where} contains {', '.join(names)} inside it: an API key is one unbroken line. "
                          f"Copy the key again (e.g. open(path).read().strip() keeps only its ends clean)")
    return value


_CONTROL_NAMES = {"\n": "a line feed", "\r": "a carriage return", "\t": "a tab", " ": "a space", "\x00": "a NUL"}


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
