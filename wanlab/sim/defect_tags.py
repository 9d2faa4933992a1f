"""Known defects the sim can render on purpose (ground truth for quality checks and teaching): their
names, the prompt tag that asks for them (`[sim:flicker=0.6]`, `[sim:blur=0.3,frozen=0.2]`) and the
`name:strength` argument of a `task:defect` fault rule.

Kept free of the renderer's imports (PyAV, PIL): the route modules and the fault grammar read it.
What each defect does at strength s: wanlab/sim/render/defects.py and docs/SIM.md.
"""

from __future__ import annotations

import math
import re

# Fixed order: the order the renderer lists (and records) them in.
DEFECTS: tuple[str, ...] = ("flicker", "frozen", "blur", "drift")

Defects = tuple[tuple[str, float], ...]

# `[sim:...]`, case-insensitive, spaces allowed inside; no nested brackets.
_TAG = re.compile(r"\[\s*sim\s*:([^\[\]]*)\]", re.IGNORECASE)

ALLOWED = f"allowed defects: {', '.join(DEFECTS)}, each with a strength within 0..1"


def _strength(text: str) -> float:
    value = float(text)  # ValueError for anything not a number
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(text)
    return value


def parse_defect(name: str, strength: str) -> tuple[str, float]:
    """One `name`, `strength` pair, checked: ValueError naming what is allowed."""
    key = name.strip().lower()
    if key not in DEFECTS:
        raise ValueError(f"unknown defect {name.strip()!r}; {ALLOWED}")
    try:
        value = _strength(strength.strip())
    except ValueError:
        raise ValueError(
            f"defect {key!r} strength {strength.strip()!r} is not a number within 0..1; {ALLOWED}"
        ) from None
    return key, value


def parse_defect_arg(arg: str | None) -> tuple[str, float]:
    """The argument of a `task:defect=name:strength` fault rule."""
    if not arg or ":" not in arg:
        raise ValueError(f"defect takes 'name:strength', e.g. 'flicker:0.5', got {arg!r}; {ALLOWED}")
    name, _, strength = arg.partition(":")
    return parse_defect(name, strength)


def parse_defect_tag(prompt: str) -> Defects:
    """The defects a prompt asks for with `[sim:name=strength,...]` tags (several tags allowed), in
    DEFECTS order; zero strengths are dropped (s = 0 is the clean render). ValueError for an unknown
    name, a bad strength or a defect given twice."""
    if "[" not in prompt:
        return ()
    found: dict[str, float] = {}
    for match in _TAG.finditer(prompt):
        tag = match.group(0)
        items = [item for item in match.group(1).split(",") if item.strip()]
        if not items:
            raise ValueError(f"sim tag {tag!r} names no defect; {ALLOWED}")
        for item in items:
            name, eq, strength = item.partition("=")
            if not eq:
                raise ValueError(f"sim tag {tag!r}: {item.strip()!r} is not 'name=strength'; {ALLOWED}")
            try:
                key, value = parse_defect(name, strength)
            except ValueError as exc:
                raise ValueError(f"sim tag {tag!r}: {exc}") from None
            if key in found:
                raise ValueError(f"sim tag {tag!r}: defect {key!r} is given twice")
            found[key] = value
    return tuple((name, found[name]) for name in DEFECTS if found.get(name))


def strip_defect_tags(prompt: str) -> str:
    """The prompt without its `[sim:...]` tags (what the rendered caption shows)."""
    if "[" not in prompt or not _TAG.search(prompt):
        return prompt
    return re.sub(r"[ \t]{2,}", " ", _TAG.sub("", prompt)).strip()


def merge_defects(base: Defects, extra: Defects) -> Defects:
    """`base` with `extra` added; a name in both takes `extra`'s strength. DEFECTS order, no zeros."""
    found = dict(base)
    found.update(extra)
    return tuple((name, found[name]) for name in DEFECTS if found.get(name))
