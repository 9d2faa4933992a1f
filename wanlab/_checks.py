"""Argument checks shared by requests, limits, prices, budgets, the Lab and sweeps: one function per idea.

Each check returns the value normalised to a plain Python type (a numpy int becomes an `int`, a numpy
float a `float`, a numpy string a `str`), or raises the caller's error class with a message that names the
argument, shows the bad value and says what to use instead. Nothing here does I/O except
`writable_folder` (which leaves nothing behind). The Lab's, sweeps' and reruns' own arguments are checked
in `arguments.py` with these.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, ValidationError

# Nesting deeper than this in `extra` is a mistake (or a cycle), not a host parameter.
_JSON_DEPTH = 16


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def is_bool(value: Any) -> bool:
    """True for Python and numpy booleans, which are never numbers here (True is not the seed 1)."""
    return isinstance(value, bool) or (type(value).__module__ == "numpy" and type(value).__name__ in ("bool_", "bool"))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _range_text(minimum: float | None, maximum: float | None, positive: bool) -> str:
    if positive:
        return " > 0" if maximum is None else f" in (0, {_num(maximum)}]"
    if minimum is not None and maximum is not None:
        return f" {_num(minimum)}–{_num(maximum)}"
    if minimum is not None:
        return f" ≥ {_num(minimum)}"
    if maximum is not None:
        return f" ≤ {_num(maximum)}"
    return ""


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    integer: bool = False,
    allow_none: bool = False,
    what: str | None = None,
    hint: str = "",
    where: str = "",
    error: type[Exception] = ValidationError,
) -> Any:
    """A finite number within bounds, as a Python int (`integer=True`; a whole float like 5.0 counts) or
    float. numpy scalars are accepted; booleans, strings and NaN/inf are not. `positive` means > 0."""
    if value is None and allow_none:
        return None
    kind = what or ("an integer" if integer else "a number")
    rule = f"{kind}{_range_text(minimum, maximum, positive)}"

    def bad(why: str = "") -> Exception:
        return error(f"{_prefix(where)}{name}={value!r} must be {rule}{hint}{why}")

    if is_bool(value) or not isinstance(value, numbers.Real):
        raise bad(_not_a_number(value))
    number = float(value)
    if not math.isfinite(number):
        raise bad(", not NaN or infinity")
    if integer:
        if isinstance(value, numbers.Integral):
            out: int | float = int(value)
        elif number.is_integer():
            out = int(number)
        else:
            raise bad()
    else:
        out = number
    if (positive and out <= 0) or (minimum is not None and out < minimum) or (maximum is not None and out > maximum):
        raise bad()
    return out


def _not_a_number(value: Any) -> str:
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ", not a str"
        return f", not a str: write {value.strip()} without quotes"
    return ", not None" if value is None else f", not a {type(value).__name__}"


def check_bool(
    name: str, value: Any, *, where: str = "", error: type[Exception] = ValidationError, allow_01: bool = False
) -> bool:
    """True/False (numpy booleans too; 0 and 1 when `allow_01`, as some hosts' docs write them)."""
    if is_bool(value):
        return bool(value)
    if allow_01 and isinstance(value, numbers.Integral) and int(value) in (0, 1):
        return bool(value)
    raise error(f"{_prefix(where)}{name}={value!r} must be True or False")


def check_text(
    name: str, value: Any, *, maximum: int | None = None, where: str = "", error: type[Exception] = ValidationError
) -> str:
    """A str (numpy strings too) that can be sent as UTF-8 JSON and is at most `maximum` characters."""
    if not isinstance(value, str):
        raise error(f"{_prefix(where)}{name} must be a str, got {type(value).__name__}")
    value = str(value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        raise error(
            f"{_prefix(where)}{name} has a character that is not valid UTF-8 (U+{ord(bad):04X}, a lone "
            f"surrogate, at position {exc.start}); remove it or decode the text with errors='replace'"
        ) from None
    if maximum is not None and len(value) > maximum:
        raise error(
            f"{_prefix(where)}{name} is {len(value)} characters; the hosts accept ≤ {maximum} (longer is "
            f"silently truncated): shorten it"
        )
    return value


def suggest(value: Any, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a near miss (case, spaces, a typo), else ''."""
    choices = list(choices)
    if not isinstance(value, str):
        return ""
    folded = {c.lower().replace(" ", ""): c for c in choices}
    key = value.lower().replace(" ", "")
    if key in folded:
        return f" (did you mean {folded[key]!r}?)"
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_choice(
    name: str, value: Any, choices: Iterable[str], *, where: str = "", error: type[Exception] = ValidationError
) -> str:
    choices = tuple(choices)
    if isinstance(value, str) and value in choices:
        return str(value)
    raise error(
        f"{_prefix(where)}{name}={value!r}; use one of {', '.join(repr(c) for c in choices)}{suggest(value, choices)}"
    )


def check_url(
    name: str,
    value: Any,
    *,
    schemes: tuple[str, ...] = ("https", "http"),
    where: str = "",
    error: type[Exception] = ValidationError,
) -> str:
    """An absolute URL with one of `schemes` and a host, without spaces or control characters (a host
    either rejects those or fetches something else)."""
    what = " or ".join(f"{s}://" for s in schemes)
    if not isinstance(value, str):
        raise error(f"{_prefix(where)}{name} must be a {what} URL (a str), got {type(value).__name__}")
    value = str(value)
    for i, ch in enumerate(value):
        if ch.isspace() or ord(ch) < 32 or ord(ch) == 127:
            shown = "a space" if ch == " " else f"the control character {ch!r}"
            raise error(
                f"{_prefix(where)}{name}={value!r} contains {shown} at position {i}; percent-encode it "
                f"(a space is %20) or remove it"
            )
    try:
        parts = urlsplit(value)
        _ = parts.port  # an out-of-range or non-numeric port raises here
    except ValueError as exc:
        raise error(f"{_prefix(where)}{name}={value!r} is not a valid URL ({exc}); check the host and port") from None
    if parts.scheme.lower() not in schemes:
        raise error(
            f"{_prefix(where)}{name}={value!r}: unsupported scheme {parts.scheme or '(none)'!r}; use a {what} URL"
        )
    if not parts.hostname:
        raise error(
            f"{_prefix(where)}{name}={value!r} has no host; give a full URL like '{schemes[0]}://example.com/…'"
        )
    return value


def field_names(cls: type) -> list[str]:
    """The keyword arguments a dataclass accepts."""
    return [f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")]


def check_fields(cls: type, names: Iterable[Any], *, where: str, what: str = "field") -> None:
    """Every name is a field of the dataclass `cls`; else say which are and suggest the nearest."""
    valid = field_names(cls)
    for name in names:
        if name not in valid:
            raise ValidationError(
                f"{where}: {cls.__name__} has no {what} {name!r}{suggest(name, valid)}; "
                f"valid {what}s: {', '.join(valid)}"
            )


def json_value(name: str, value: Any, *, where: str = "", depth: int = 0) -> Any:
    """`value` as plain JSON data (str, finite int/float, bool, None, lists, dicts with str keys), numpy
    scalars and tuples normalised; anything else is refused, so the host never gets what the log cannot store."""
    if depth > _JSON_DEPTH:
        raise ValidationError(
            f"{_prefix(where)}{name} is nested more than {_JSON_DEPTH} levels deep (a cycle?); give plain JSON data"
        )
    value = plain(value)
    if value is None:
        return None
    if isinstance(value, str):
        return check_text(name, value, where=where)
    if is_bool(value):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return check_number(name, value, where=where)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(f"{_prefix(where)}{name} has the key {k!r}; JSON keys must be str")
            out[str(k)] = json_value(f"{name}[{k!r}]", v, where=where, depth=depth + 1)
        return out
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray":
        return [json_value(f"{name}[{i}]", v, where=where, depth=depth + 1) for i, v in enumerate(value)]
    raise ValidationError(
        f"{_prefix(where)}{name}={value!r}: a {type(value).__name__} cannot be sent as JSON; "
        f"use a str, number, bool, None, list or dict"
    )


def writable_folder(name: str, path: Any, *, file: bool = False) -> Path:
    """A folder wanlab may create and write in (or, with `file`, a file in such a folder). Probes by
    making and removing a temporary folder in the nearest existing ancestor, so nothing is left behind."""
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"{name} must be a folder path (a str or Path), got {type(path).__name__}")
    where = Path(path)
    if "\0" in str(where):
        raise ConfigError(f"{name}={str(path)!r} contains a NUL character; choose a writable folder with a plain name")
    try:
        if file and where.is_dir():
            raise ConfigError(
                f"{name}={str(path)!r} is a folder; give a file path such as {str(where / 'runs.sqlite')!r}"
            )
        folder = where.parent if file else where
        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise ConfigError(f"{name}={str(path)!r}: {str(probe)!r} is a file, not a folder; choose a writable folder")
        with tempfile.TemporaryDirectory(prefix=".wanlab-probe-", dir=probe):
            pass
    except ConfigError:
        raise
    except OSError as exc:
        raise ConfigError(
            f"{name}={str(path)!r} cannot be created or written in ({exc.strerror or exc}); choose a "
            f"writable folder (one you can create files in, e.g. under your home directory)"
        ) from None
    except ValueError as exc:  # an embedded NUL byte and the like
        raise ConfigError(f"{name}={str(path)!r} is not a usable path ({exc}); choose a writable folder") from None
    return where


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (so cells and tags stay JSON); anything else as is."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return value.item()
    return value
