"""Request bodies as JSON, refused (ValueError) rather than crashed on.

`json.loads` alone lets three things through that later turn into 500s: nesting deeper than the
interpreter's recursion limit (RecursionError, not ValueError), the non-standard literals NaN /
Infinity, and numbers like 1e400 that parse to infinity (int() of them raises OverflowError, and
JSONResponse refuses to serialise them back). The hosts' own parsers reject all three as bad JSON."""

from __future__ import annotations

import json
import math
from typing import Any


class BadJson(ValueError):
    """The body is not strict, finite, reasonably nested JSON."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJson(f"number out of range: {text[:40]}")
    return value


def _no_constant(name: str) -> Any:
    raise BadJson(f"{name} is not JSON")


def loads(raw: bytes, empty: Any = None) -> Any:
    """The parsed body, `empty` for no body at all; BadJson for anything a strict parser refuses."""
    if not raw:
        return empty
    try:
        return json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise BadJson("JSON nested too deeply") from None
    except BadJson:
        raise
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many integer digits
        raise BadJson(f"not valid JSON: {exc}") from None


def loads_object(raw: bytes) -> dict:
    """A body that must be a JSON object (an empty body counts as {})."""
    body = loads(raw, {})
    if not isinstance(body, dict):
        raise BadJson("the body must be a JSON object")
    return body
