"""Statistics for blind pairwise judging and seed studies.

`fit` turns judgments ("which of these two videos is better?") into a score per item with an interval;
`next_pair` picks the comparison worth a judge's next minute; `variance_share` answers "was it the words
or luck?" for a prompts × seeds study.

The pairwise model is Davidson's (1970) Bradley–Terry with ties, fitted with scipy.optimize (math in
`wanlab._bt`). Not `choix`: it has no ties model (a tie would have to be dropped or counted as half a win
each way, which biases close items apart or together), and it returns point estimates without intervals,
so a ranking could not say which of its differences are noise.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from . import _bt

if TYPE_CHECKING:
    import pandas as pd

CHOICES = ("a", "b", "tie", "skip")
_OUTCOME = {"a": 0, "b": 1, "tie": 2}


def _id(value: object) -> str | None:
    """An item id as a string; None for a missing one (None, NaN, pd.NA)."""
    import pandas as pd

    return None if pd.isna(value) else str(value)


def _parse(judgments: pd.DataFrame | None, items: Sequence[str] | None) -> tuple[list[str], _bt.Counts]:
    """Item ids (given order, then unseen ones from the judgments when `items` is None) and the counts."""
    if judgments is None or len(judgments) == 0:
        ids = list(dict.fromkeys(str(i) for i in items or ()))
        empty = np.zeros(0, int)
        return ids, _bt.counts(empty, empty, empty, max(len(ids), 1))
    missing = [c for c in ("a", "b", "choice") if c not in judgments]
    if missing:
        raise ValueError(f"judgments need the columns a, b and choice; missing: {', '.join(missing)}")
    # plain Python over object arrays: a few hundred rows, and 10× quicker than pandas string methods
    raw = judgments["choice"].to_numpy(object)
    choice = [v.strip().lower() if isinstance(v, str) else v for v in raw]
    bad = sorted({repr(v) for v in choice if not (isinstance(v, str) and v in CHOICES)})
    if bad:
        raise ValueError(f"choice must be one of {', '.join(map(repr, CHOICES))}; got {', '.join(bad)}")
    keep = np.array([v != "skip" for v in choice], bool)
    a_opt = [_id(v) for v in judgments["a"].to_numpy(object)[keep]]
    b_opt = [_id(v) for v in judgments["b"].to_numpy(object)[keep]]
    if None in a_opt or None in b_opt:
        raise ValueError("judgments have a missing item id in a or b")
    a, b = [str(v) for v in a_opt], [str(v) for v in b_opt]
    same = [x for x, y in zip(a, b, strict=True) if x == y]
    if same:
        raise ValueError(f"an item judged against itself: {same[0]!r}")
    seen = list(dict.fromkeys([*a, *b]))
    if items is None:
        ids = seen
    else:
        ids = list(dict.fromkeys(str(i) for i in items))
        unknown = sorted(set(seen) - set(ids))
        if unknown:
            raise ValueError(f"judgments name items not in `items`: {', '.join(unknown[:5])}")
    pos = {item: n for n, item in enumerate(ids)}
    ia = np.fromiter((pos[x] for x in a), int, len(a))
    ib = np.fromiter((pos[x] for x in b), int, len(b))
    outcome = np.array([_OUTCOME[v] for v, k in zip(choice, keep, strict=True) if k], int)
    return ids, _bt.counts(ia, ib, outcome, max(len(ids), 1))


def fit(judgments: pd.DataFrame, items: Sequence[str] | None = None, *, level: float = 0.95) -> pd.DataFrame:
    """Bradley–Terry scores with ties from pairwise judgments.

    `judgments`: columns `a`, `b` (item ids) and `choice` ∈ {"a", "b", "tie", "skip"}; skips are ignored
    (the judge could not tell, or the pair was broken: that is no evidence either way). `items`: the ids to
    report, in any order; None means every id in the judgments.

    Returns one row per item, sorted by `score` (log-strength, centred so the judged items sum to zero),
    with `lo`/`hi` (the `level` interval), `comparisons`, `wins`, `ties`, `losses`. The difference of two
    scores is log-odds: P(i beats j | not a tie) = 1 / (1 + exp(score_j − score_i)). `attrs["tie_nu"]`
    is Davidson's ν: two equal items tie with probability ν / (2 + ν).

    Scores are the posterior mode under a weak N(0, 3²) prior per log-strength (and on log ν), so an item
    that won every comparison gets a large finite score with a wide interval instead of infinity. Intervals
    are Wald intervals from the inverse Hessian at the mode (the model is an exponential family, so observed
    and expected information agree); they are symmetric, so for an unbeaten item the upper end is the
    uncertain one. Chosen over a bootstrap because they cost one matrix inverse, and resampling a few
    dozen judgments often leaves an item unbeaten, which the bootstrap turns into a runaway tail. Items
    never judged get NaN score and interval (no evidence is not "average") and are listed last.
    """
    import pandas as pd
    from scipy.stats import norm

    if not 0 < level < 1:
        raise ValueError(f"level={level!r}: give a probability such as 0.95")
    ids, c = _parse(judgments, items)
    k = len(ids)
    n_all, wins, ties, losses = (np.zeros(max(k, 1)) for _ in range(4))
    for idx, won, lost in ((c.i, c.wi, c.wj), (c.j, c.wj, c.wi)):
        np.add.at(wins, idx, won)
        np.add.at(losses, idx, lost)
        np.add.at(ties, idx, c.t)
        np.add.at(n_all, idx, c.n)
    theta, eta, cov = _bt.fit(c) if len(c.i) else (np.zeros(k), float("nan"), np.full((k, k), np.nan))
    judged = n_all[:k] > 0
    score = np.where(judged, theta[:k], np.nan)
    half = norm.ppf(0.5 + level / 2) * np.sqrt(np.clip(np.diag(cov)[:k], 0, None))
    out = pd.DataFrame(
        {
            "score": score,
            "lo": score - half,
            "hi": score + half,
            "comparisons": n_all[:k].astype(int),
            "wins": wins[:k].astype(int),
            "ties": ties[:k].astype(int),
            "losses": losses[:k].astype(int),
        },
        index=pd.Index(ids, name="item", dtype=object),
    )
    out = out.sort_values(["score", "wins"], ascending=False, na_position="last", kind="stable")
    out.attrs.update(
        tie_nu=float(np.exp(eta)), level=level, judgments=int(c.n.sum()), prior_sd=_bt.PRIOR_SD, model="davidson"
    )
    return out


def next_pair(
    items: Sequence[str], judgments: pd.DataFrame | None, rng: np.random.Generator | random.Random | None = None
) -> tuple[str, str] | None:
    """The pair whose next judgment tells most about the order: one whose order is still in doubt, and
    about which one more judgment would teach a lot.

    From one fit: d = score_i − score_j, v its variance (Laplace), p = P(i beats j | no tie). The pick
    maximises P(the fitted order of i, j is wrong) × ½·log(1 + v·p(1 − p)) = Φ(−|d|/√v) × the expected
    information of one more comparison about d (p(1 − p) is a comparison's Fisher information, the plain
    Bradley–Terry value, close enough with ties). Close pairs score high through both factors, pairs
    compared often drop through a small v, and an item never judged keeps the prior's variance (3² = 9),
    so new items and unjudged pairs come first. Among equals (the very first call, every score 0) the
    pair compared fewest times wins, then `rng` decides. In simulations (6–8 items) this reached Kendall
    τ ≥ 0.8 in fewer judgments than random pairs, and than the simpler p(1 − p)/(1 + n_ij).

    `rng` (a numpy Generator or `random.Random`) also shuffles which item is shown as "a": a blind judge
    should not learn that the left video is the favourite. One fit per call: a few ms for a few dozen
    items. None when fewer than two items. Judgments of items not in `items` still inform the scores but
    are never proposed.
    """
    from scipy.stats import norm

    rng = rng if rng is not None else np.random.default_rng()
    wanted = list(dict.fromkeys(str(i) for i in items))
    if len(wanted) < 2:
        return None
    extra: list[str] = []
    if judgments is not None and len(judgments) and {"a", "b"} <= set(judgments.columns):
        seen = [*judgments["a"].dropna().astype(str), *judgments["b"].dropna().astype(str)]
        extra = [i for i in dict.fromkeys(seen) if i not in set(wanted)]
    ids, c = _parse(judgments, wanted + extra)
    if len(c.i):
        phi, sigma = _bt.mode(c)
        theta = phi[:-1]
    else:
        theta, sigma = np.zeros(len(ids)), np.eye(len(ids) + 1) * _bt.PRIOR_SD**2
    met = np.zeros((len(ids), len(ids)))
    met[c.i, c.j] = met[c.j, c.i] = c.n
    i, j = np.triu_indices(len(wanted), 1)
    d = theta[i] - theta[j]
    v = np.clip(sigma[i, i] + sigma[j, j] - 2 * sigma[i, j], 1e-12, None)
    p = 1 / (1 + np.exp(-d))
    gain = norm.sf(np.abs(d) / np.sqrt(v)) * 0.5 * np.log1p(v * p * (1 - p))
    best = np.flatnonzero(gain >= gain.max() * (1 - 1e-9))
    best = best[met[i[best], j[best]] == met[i[best], j[best]].min()]
    pick = int(rng.choice(best.tolist()))
    pair = (wanted[i[pick]], wanted[j[pick]])
    return pair if rng.random() < 0.5 else (pair[1], pair[0])


def variance_share(df: pd.DataFrame, metric: str, by: Sequence[str] = ("prompt", "seed")) -> pd.DataFrame:
    """How much of `metric`'s spread comes from each factor in `by`, and how much is left over.

    For a crossed prompts × seeds study this is a two-way ANOVA without interaction: each factor's sum of
    squares over the total. A prompt share near 1 means the words decide the outcome; a large seed share
    means it was luck of the draw, and comparing prompts on one seed each would mislead. With one run per
    cell the interaction cannot be told from noise, so it sits in the residual.

    The sums of squares are sequential (type I, each factor after those before it in `by`), from nested
    least-squares fits with one dummy per level. For a balanced design (every prompt with every seed, equal
    counts) that is the unique decomposition; with missing cells the order matters — the first factor gets
    the part the two share — and `attrs["balanced"]` is False to say so. The shares always sum to 1.
    `df` counts levels actually present (rank added), so a confounded factor gets 0.

    Rows with a missing metric or factor are dropped. Returns rows per factor plus "residual" with `share`,
    `ss`, `df`, `n` (runs used), `levels`, `F` and `p` (F-test of the factor against the residual; NaN when
    no residual degrees of freedom are left). All shares are NaN when the metric does not vary.
    """
    import pandas as pd
    from scipy.stats import f as f_dist

    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [metric, *by] if c not in df]
    if missing:
        raise ValueError(f"variance_share: no column {', '.join(map(repr, missing))} in the frame")
    if not by:
        raise ValueError("variance_share: name at least one factor in `by`")
    data = df[[metric, *by]].dropna()
    y = data[metric].astype(float).to_numpy()
    n = len(y)
    x = np.ones((n, 1))
    rss = [float(np.sum((y - y.mean()) ** 2)) if n else 0.0]
    ranks, levels = [1], []
    for col in by:
        codes = pd.Categorical(data[col].astype("string")).codes
        levels.append(int(len(np.unique(codes))))
        x = np.hstack([x, np.eye(max(levels[-1], 1))[codes][:, 1:]])
        beta, *_ = np.linalg.lstsq(x, y, rcond=None)
        rss.append(float(np.sum((y - x @ beta) ** 2)))
        ranks.append(int(np.linalg.matrix_rank(x)) if n else 1)
    tiny = 1e-12 * max(rss[0], 1e-300)  # round-off of the least-squares fits, not variance
    rss = [r if r > tiny else 0.0 for r in rss]
    total, resid = rss[0], rss[-1]
    ss = [max(rss[m] - rss[m + 1], 0.0) for m in range(len(by))]
    dfs = [ranks[m + 1] - ranks[m] for m in range(len(by))]
    df_res = n - ranks[-1]
    ms_res = resid / df_res if df_res > 0 else float("nan")
    rows = {}
    for col, s, d, lv in zip(by, ss, dfs, levels, strict=True):
        fval = (s / d) / ms_res if d > 0 and df_res > 0 and ms_res > 0 else float("nan")
        p = float(f_dist.sf(fval, d, df_res)) if np.isfinite(fval) else float("nan")
        rows[col] = {"ss": s, "df": d, "levels": lv, "F": fval, "p": p}
    rows["residual"] = {"ss": resid, "df": max(df_res, 0), "levels": np.nan, "F": np.nan, "p": np.nan}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.insert(0, "share", out["ss"] / total if total > 1e-12 * max(1.0, float(np.sum(y**2))) else np.nan)
    out.insert(3, "n", n)
    out.index.name = "source"
    cells = data.groupby([data[c].astype("string") for c in by]).size() if n else pd.Series(dtype=int)
    full = int(np.prod(levels)) if levels else 0
    out.attrs.update(metric=metric, balanced=bool(len(cells) == full and cells.nunique() <= 1), by=tuple(by))
    return out


__all__ = ["fit", "next_pair", "variance_share", "CHOICES"]
