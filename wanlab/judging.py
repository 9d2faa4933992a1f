"""Blind side-by-side judging: two runs' videos shown as "A" and "B", the choice logged against run ids.

The items ranked are the distinct values of `by` among the runs (prompt variants, seeds, models;
`by="run_id"`: single runs). Every choice goes to the log (`lab.log.add_judgment`), skips too, and
`rank` fits the ranking from the log. A session runs without a front end; in a notebook it displays as
the widget `view` makes (`wanlab.ui.judge.judge_view`, handed in by `Lab.judge`: no UI import here).
"""

from __future__ import annotations

import getpass
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from .log import ExperimentLog


class Bench(Protocol):
    """What judging needs of a Lab: its experiment log."""

    log: ExperimentLog


CHOICES = ("a", "b", "tie", "skip")  # "a": the LEFT video is better, "b": the right one
TARGET = 5  # comparisons per item this session aims at before it says it is done
NO_VALUE = "(none)"  # the item of a run whose `by` column is empty


@dataclass(frozen=True)
class Pair:
    """The pair on screen: the run ids shown left ("A") and right ("B")."""

    left: str
    right: str


class JudgeSession:
    """Pairs to judge, one at a time: `pair`, `choose("a" | "b" | "tie" | "skip")` ("a": the left video is
    better; a skip is logged, not counted), `judged`, `done`, `reveal()`. Done once every item has
    `target` comparisons from this session (`more()` raises it); `target=None` never ends."""

    def __init__(
        self,
        lab: Bench,
        runs: pd.DataFrame,
        by: str,
        *,
        judge: str,
        seed: int | None = None,
        target: int | None = TARGET,
        view: Callable[[JudgeSession], Any] | None = None,
    ):
        self.lab, self.by, self.judge, self.target = lab, by, judge, target
        self.rng = random.Random(seed)
        self.item_of: dict[str, str] = dict(zip(runs["run_id"], runs["item"], strict=True))
        self.path_of: dict[str, str] = dict(zip(runs["run_id"], runs["path"], strict=True))
        self.items: list[str] = sorted(set(self.item_of.values()))
        self.judged = 0
        self.skipped = 0
        self.judgment_ids: list[str] = []
        self.counts: Counter[str] = Counter()  # comparisons per item in this session (skips left out)
        self.met: Counter[frozenset[str]] = Counter()  # pairs of items shown this session (skips too)
        self.pair: Pair | None = None
        self._view = view
        self._widget: Any = None
        self._listeners: list[Callable[[JudgeSession], Any]] = []
        self._next()

    # -- the state -------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.pair is None

    @property
    def remaining(self) -> int:
        """Pairs still to judge for every item to reach `target` comparisons (0 without a target)."""
        if self.target is None:
            return 0
        short = [max(0, self.target - self.counts[i]) for i in self.items]
        return max(max(short, default=0), math.ceil(sum(short) / 2))

    def status(self) -> str:
        """One line: "12 judged · 3 pairs left to reach 5 per prompt" (no labels, no run ids)."""
        parts = [f"{self.judged} judged"]
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        if self.done:
            parts.append("done" + (f": every {self.by} has {self.target}+ comparisons" if self.remaining == 0 else ""))
        elif self.target is not None:
            left = self.remaining
            parts.append(f"{left} pair{'s' if left != 1 else ''} left to reach {self.target} per {self.by}")
        return " · ".join(parts)

    def reveal(self, pair: Pair | None = None) -> dict[str, str]:
        """What the current pair (or `pair`) shows: {"left": item, "right": item} (the hidden labels)."""
        pair = pair or self.pair
        if pair is None:
            raise ValueError("no pair on screen: the session is done")
        return {"left": self.item_of[pair.left], "right": self.item_of[pair.right]}

    def video(self, run_id: str) -> bytes:
        """The MP4 bytes of one run of this session."""
        return Path(self.path_of[run_id]).read_bytes()

    # -- judging ---------------------------------------------------------------------------------
    def choose(self, choice: str) -> str:
        """Log the choice for the pair on screen and load the next one; returns the judgment id.
        "a" = the left video is better, "b" = the right one, "tie", or "skip"."""
        if choice not in CHOICES:
            raise ValueError(f"choice={choice!r}: use 'a' (left better), 'b' (right better), 'tie' or 'skip'")
        if self.pair is None:
            raise ValueError("the session is done: nothing is on screen to judge (session.more() asks for more)")
        left, right = self.pair.left, self.pair.right
        a, b = sorted((left, right))  # stored in run-id order; `left` says which one was shown left
        relative = choice if choice in ("tie", "skip") or a == left else {"a": "b", "b": "a"}[choice]
        jid = self.lab.log.add_judgment(a, b, relative, judge=self.judge, left=left, by=self.by)
        self.judgment_ids.append(jid)
        if choice == "skip":
            self.skipped += 1
        else:
            self.judged += 1
            self.counts.update([self.item_of[left], self.item_of[right]])
        self._next(skipped=(self.item_of[left], self.item_of[right]) if choice == "skip" else None)
        return jid

    def more(self, per_item: int = TARGET) -> None:
        """Raise the target by `per_item` comparisons per item and load a pair if there is one."""
        self.target = (max(self.counts.values(), default=0) if self.target is None else self.target) + per_item
        if self.pair is None:
            self._next()

    def on_change(self, fn: Callable[[JudgeSession], Any]) -> None:
        """Call `fn(session)` after every change of pair (the widget follows the session this way)."""
        self._listeners.append(fn)

    def _next(self, skipped: tuple[str, str] | None = None) -> None:  # then tell the listeners
        self.pair = self._pick(skipped)
        for fn in list(self._listeners):
            fn(self)

    def _pick(self, skipped: tuple[str, str] | None) -> Pair | None:
        """The next pair: `ranking.next_pair` among the items still short of the target (the ranking can
        lose interest in an item that keeps winning, the target cannot); a lone short item meets the item
        it met least this session. Then one run of each item, the least shown, on a random side."""
        from . import ranking

        short = self.items if self.target is None else [i for i in self.items if self.counts[i] < self.target]
        if not short:
            return None
        shown, done = self._history()
        if len(short) == 1:
            (lone,) = short
            others = [i for i in self.items if i != lone]
            least = min(self.met[frozenset((lone, i))] for i in others)
            chosen: tuple[str, str] | None = (
                lone,
                self.rng.choice([i for i in others if self.met[frozenset((lone, i))] == least]),
            )
        else:
            chosen = ranking.next_pair(short, done, self.rng)
            if chosen is not None and skipped is not None and set(chosen) == set(skipped) and len(short) > 2:
                # just skipped: ask about something else this once, if the ranking has another pair to offer
                rest = [i for i in short if i not in skipped] + [self.rng.choice(skipped)]
                chosen = ranking.next_pair(rest, done, self.rng)
        if chosen is None:  # fewer than two items: cannot happen after `start`'s checks
            return None
        self.met[frozenset(chosen)] += 1
        runs = [self._least_shown(item, shown) for item in chosen]
        self.rng.shuffle(runs)
        return Pair(runs[0], runs[1])

    def _history(self) -> tuple[Counter[str], pd.DataFrame]:
        """(times each run of this session was shown, skips too; judgments between items: a, b, choice)."""
        ids = list(self.item_of)
        j = self.lab.log.judgments(a=ids, b=ids)
        return Counter([*j["a"], *j["b"]]), _item_pairs(j[j["choice"] != "skip"], self.item_of)

    def _least_shown(self, item: str, shown: Counter[str]) -> str:
        runs = sorted(r for r, i in self.item_of.items() if i == item)
        fewest = min(shown[r] for r in runs)
        return self.rng.choice([r for r in runs if shown[r] == fewest])

    # -- display ---------------------------------------------------------------------------------
    def widget(self) -> Any:  # made once, by the `view` the session was given
        if self._widget is None:
            if self._view is None:
                raise RuntimeError("this session has no view: open it with lab.judge(...) to see the videos")
            self._widget = self._view(self)
        return self._widget

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        if self._view is None:
            return {"text/plain": repr(self)}
        return self.widget()._repr_mimebundle_(include=include, exclude=exclude)

    def __repr__(self) -> str:
        return f"<JudgeSession by {self.by}: {len(self.items)} items, {len(self.item_of)} runs; {self.status()}>"


# -- entry points (Lab.judge, Lab.ranking) -----------------------------------------------------------
def start(
    lab: Bench,
    runs: Any = None,
    by: str = "prompt",
    *,
    judge: str | None = None,
    seed: int | None = None,
    target: int | None = TARGET,
    view: Callable[[JudgeSession], Any] | None = None,
) -> JudgeSession:
    """A judging session over `runs` (None: every succeeded run of the log; a log DataFrame; a Sweep; a
    list of run ids or Jobs), ranking the distinct values of `by`. Only succeeded runs whose video file
    exists are shown; fewer than two distinct values is a ValueError saying what to pass."""
    frame = _frame(lab, runs)
    if by not in frame.columns:
        raise ValueError(f"by={by!r} is not a log column; try by='prompt', 'seed', 'model' or 'run_id'")
    ok = frame[(frame["status"].astype("string") == "SUCCEEDED") & frame["path"].notna()]
    ok = ok[[Path(str(p)).is_file() for p in ok["path"]]]
    items = ok[by].map(_item)
    if items.nunique() < 2:
        found = f"{len(ok)} succeeded run(s) with a video" + (f", all with one {by}" if len(ok) else "")
        raise ValueError(
            f"nothing to compare by {by!r}: {found}. Pass runs (a list of Jobs or run ids, a Sweep, or rows of "
            f"lab.log.df) that include succeeded runs with at least two different values of {by!r}, or pick another "
            f"by= (e.g. by='run_id' to rank single runs)"
        )
    if target is not None and (not isinstance(target, int) or target < 1):
        raise ValueError(f"target={target!r}: comparisons per item, a positive int (or None: until no pair is left)")
    table = ok[["run_id", "path"]].astype("object").assign(item=list(items))
    return JudgeSession(lab, table, by, judge=_judge_name(judge), seed=seed, target=target, view=view)


def rank(lab: Bench, by: str = "prompt", runs: Any = None, *, judge: str | None = None, level: float = 0.95) -> Any:
    """The ranking of the values of `by` from the log's judgments (all judges, or `judge`'s): judgments are
    of runs, so any column can rank them — a judgment of two runs with the same value says nothing about
    that column and is left out, and so are skips. With `runs`, only judgments between those runs count,
    and every value of `by` among them is listed (unjudged ones too)."""
    from . import ranking

    frame = lab.log.frame() if runs is None else _frame(lab, runs)
    if by not in frame.columns:
        raise ValueError(f"by={by!r} is not a log column; try by='prompt', 'seed', 'model' or 'run_id'")
    item_of = dict(zip(frame["run_id"], frame[by].map(_item), strict=True))
    j = lab.log.judgments() if judge is None else lab.log.judgments(judge=judge)
    j = j[(j["choice"] != "skip") & j["a"].isin(item_of) & j["b"].isin(item_of)]
    pairs = _item_pairs(j, item_of)
    items = sorted(set(item_of.values())) if runs is not None else sorted(set(pairs["a"]) | set(pairs["b"]))
    return ranking.fit(pairs, items=items, level=level)


def _item_pairs(j: pd.DataFrame, item_of: dict[str, str]) -> pd.DataFrame:
    import pandas as pd

    out = pd.DataFrame({"a": j["a"].map(item_of), "b": j["b"].map(item_of), "choice": j["choice"]})
    return out[out["a"] != out["b"]].reset_index(drop=True).astype("object")


def _frame(lab: Bench, runs: Any) -> pd.DataFrame:
    """The log's rows of `runs`, whatever form they came in."""
    if runs is None:
        return lab.log.frame()
    if hasattr(runs, "columns") and hasattr(runs, "to_dict"):  # a DataFrame of log rows (or a sweep's df)
        if "run_id" not in runs.columns:
            raise ValueError("runs: a DataFrame needs a run_id column (rows of lab.log.df or sweep.df)")
        ids = [str(r) for r in runs["run_id"].dropna()]
    elif hasattr(runs, "run_ids") and hasattr(runs, "cells"):  # a Sweep
        ids = [r for r in runs.run_ids if r]
    elif isinstance(runs, (str, bytes)) or not isinstance(runs, (Sequence, set)):
        raise TypeError(
            f"runs: pass a list of run ids or Jobs, a Sweep, or rows of lab.log.df (got {type(runs).__name__})"
        )
    else:
        ids = [_run_id(r) for r in runs]
    return lab.log.frame(run_id=ids or [])


def _run_id(run: Any) -> str:
    if isinstance(run, str):
        return run
    if isinstance(run, dict) and "run_id" in run:
        return str(run["run_id"])
    rid = getattr(run, "run_id", None) or getattr(run, "id", None)
    if not isinstance(rid, str):
        raise TypeError(f"runs: {run!r} is not a run id, a Job or a log row")
    return rid


def _item(value: Any) -> str:
    import pandas as pd

    return NO_VALUE if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _judge_name(judge: str | None) -> str:
    if judge is not None:
        if not isinstance(judge, str) or not judge.strip():
            raise ValueError(f"judge={judge!r}: name who judges (a non-empty string), or leave it out")
        return judge.strip()
    try:
        return getpass.getuser() or "anonymous"
    except Exception:  # no user name in this environment (some containers)
        return "anonymous"
