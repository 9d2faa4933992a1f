"""The API key: read when used (not at import), masked everywhere it could be printed, scrubbed from
log records while it is live (see KeyMask) — with no change to logging at import."""

from __future__ import annotations

import logging
import os
import threading
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
            _track(self)

    def _current(self) -> str:
        return self._value if self._value else _clean(os.environ.get(self.env or "", ""), f"${self.env}")

    def reveal(self) -> str:
        """The key itself, for the Authorization header only. Masking in log records follows it (KeyMask)."""
        value = self._current()
        if value:
            _track(self)
        return value

    def forget(self) -> None:
        """Stop masking this key in log records (done anyway once the Secret is garbage-collected)."""
        _REGISTRY.discard(self)
        _detach_if_idle()

    def __bool__(self) -> bool:
        return bool(self.reveal())

    @property
    def masked(self) -> str:
        value = self._current()
        return _mask(value) if value else "<no key>"

    def __repr__(self) -> str:
        src = f" from ${self.env}" if self.env and not self._value else ""
        return f"Secret({self.masked}{src})"

    __str__ = __repr__

    def __reduce__(self):  # a pickled Lab or job must not carry the key
        raise TypeError("wanlab.Secret cannot be pickled")


_REGISTRY: weakref.WeakSet[Secret] = weakref.WeakSet()


def _mask(value: str) -> str:
    return f"{value[:3]}…{value[-4:]}" if len(value) >= 16 else "…" * 3


def _clean(value: str, where: str) -> str:
    """A key read from a file or pasted ends in a newline more often than not: strip the ends. A control
    character inside would make httpx refuse the header with the whole key in its message, so refuse it
    here, in words that never quote the key."""
    value = value.strip()
    bad = [c for c in value if ord(c) < 32 or ord(c) == 127 or c.isspace()]
    if bad:
        names = sorted({_CONTROL_NAMES.get(c, f"U+{ord(c):04X}") for c in bad})
        raise ConfigError(
            f"{where} contains {', '.join(names)} inside it: an API key is one unbroken line. "
            f"Copy the key again (e.g. open(path).read().strip() keeps only its ends clean)"
        )
    return value


_CONTROL_NAMES = {"\n": "a line feed", "\r": "a carriage return", "\t": "a tab", " ": "a space", "\x00": "a NUL"}


# -- masking live keys in log records -------------------------------------------------------------------

_PREFIXES = ("wanlab", "httpx", "httpcore", "hpack", "aiohttp", "uvicorn", "asyncio")


class KeyMask(logging.Filter):
    """Replaces every live key in a record of the watched loggers (`_PREFIXES`) with its masked form.

    Where it sits, and why: a record factory would see every record, but it is one process-wide hook shared
    by every library — replacing it (at import, as this module once did) changes everyone's records for
    good. A filter on a logger is local, but it does not see records propagated from child loggers
    (`wanlab._runner`, `httpcore.http11`, `hpack.hpack`), some of which are created after the key. Every
    record that is printed or captured goes through a handler, though, and a handler runs its filters
    before it formats. So this filter is added to the handlers that the watched loggers' records can reach
    — their own and their ancestors' up to the root (while `propagate` holds), and `logging.lastResort` —
    and only while a key is live:

    * attached when a key is first used (a `Secret` made with a value, or one read from its environment
      variable), and checked again each time a key is used (`Secret.reveal`, once per request), so a
      handler added in between (`logging.basicConfig`, pytest's caplog) is covered before the next request;
    * removed from every handler it was added to when the last `Secret` holding a key is garbage-collected
      (or `Secret.forget()` is called).

    `import wanlab` touches no logger, handler or factory. Records of other loggers pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(_PREFIXES) and len(_REGISTRY):
            _scrub(record)
        return True


_MASK = KeyMask("wanlab.secret")
_ATTACHED: weakref.WeakSet[logging.Filterer] = weakref.WeakSet()
_LOCK = threading.RLock()  # re-entered when a finalizer runs inside _attach (GC)


def _scrub(record: logging.LogRecord) -> None:
    """Replace any live key in the record's message, in place (later handlers see the masked record)."""
    try:
        msg = record.getMessage()
    except Exception:
        return
    changed = False
    for s in list(_REGISTRY):
        value = s._current()
        if value and value in msg:
            msg = msg.replace(value, _mask(value))
            changed = True
    if changed:
        record.msg, record.args = msg, None


_WATCHED: tuple[int, list[logging.Logger]] = (-1, [])


def _watched_loggers() -> list[logging.Logger]:
    """The watched loggers that exist, re-listed only when a logger has been created since (a placeholder
    that becomes a logger keeps the count, but it is reached as the parent of the one that made it)."""
    global _WATCHED
    registry = logging.Logger.manager.loggerDict
    if _WATCHED[0] != len(registry):
        _WATCHED = (
            len(registry),
            [
                lg
                for name, lg in list(registry.items())
                if name.startswith(_PREFIXES) and isinstance(lg, logging.Logger)
            ],
        )
    return _WATCHED[1]


def _reachable_handlers() -> list[logging.Handler]:
    """Handlers a record of a watched logger can be emitted by."""
    found: dict[int, logging.Handler] = {}
    seen: set[int] = set()
    for lg in _watched_loggers():
        node: logging.Logger | None = lg
        while node is not None and id(node) not in seen:
            seen.add(id(node))
            for h in node.handlers:
                found[id(h)] = h
            node = node.parent if node.propagate else None
    for h in logging.root.handlers:
        found[id(h)] = h
    if logging.lastResort is not None:
        found[id(logging.lastResort)] = logging.lastResort
    return list(found.values())


def _any_live() -> bool:
    """Is any key live? (Iterating a WeakSet yields live members only: a dying Secret's own finalizer
    may run before the set drops it.)"""
    return any(True for _ in _REGISTRY)


def _attach() -> None:
    with _LOCK:
        if not _any_live():
            return
        for h in _reachable_handlers():
            if _MASK not in h.filters:
                h.addFilter(_MASK)
                _ATTACHED.add(h)


def _detach_if_idle() -> None:
    with _LOCK:
        if _any_live():
            return
        for h in list(_ATTACHED):
            h.removeFilter(_MASK)
        _ATTACHED.clear()


def _track(secret: Secret) -> None:
    """A key is live: remember it (weakly) and make sure the mask covers today's handlers."""
    if secret not in _REGISTRY:
        _REGISTRY.add(secret)
        weakref.finalize(secret, _detach_if_idle).atexit = False
    _attach()
