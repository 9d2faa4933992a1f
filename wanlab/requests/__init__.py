"""What to make: one frozen, validated request type per WAN mode.

A request never knows a URL or a host. It is checked twice, both times before anything is sent:
on creation against the model it names (or the newest WAN model for its mode, whose rules are the
same on both hosts), and again by the Lab against the exact model the chosen host will run.
`base` holds what every mode shares; `frames` the text- and frame-driven modes; `references` the
grid, reference and edit modes; `extend` video extension.
"""

from __future__ import annotations

from ..catalog import SEED_MAX
from .base import NEGATIVE_MAX, PROMPT_MAX, Request
from .extend import Extend
from .frames import FLF2V, I2V, T2V
from .references import Edit, Grid9, Ref2V

REQUEST_TYPES: dict[str, type[Request]] = {cls.mode: cls for cls in (T2V, I2V, FLF2V, Grid9, Ref2V, Edit, Extend)}

__all__ = [
    "FLF2V",
    "I2V",
    "NEGATIVE_MAX",
    "PROMPT_MAX",
    "REQUEST_TYPES",
    "SEED_MAX",
    "T2V",
    "Edit",
    "Extend",
    "Grid9",
    "Ref2V",
    "Request",
]
