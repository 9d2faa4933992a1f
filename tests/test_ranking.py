"""wanlab.ranking: the Davidson (Bradley–Terry with ties) fit recovers a known order, its intervals cover
the truth about as often as they claim, ties are estimated, edge cases give finite or explicit answers;
next_pair asks the informative pair; variance_share splits prompt from seed."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

from wanlab import ranking

TRUE = np.linspace(-1.5, 1.5, 6)  # log-strengths, centred
NU = 0.5
IDS = [f"v{i}" for i in range(len(TRUE))]


def outcomes(theta: np.ndarray, nu: float, i: np.ndarray, j: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Davidson draws for pairs (i, j): "a" (i won), "b" or "tie"."""
    pi, pj = np.exp(theta[i]), np.exp(theta[j])
    pt = nu * np.sqrt(pi * pj)
    u = rng.random(len(i)) * (pi + pj + pt)
    return np.where(u < pi, "a", np.where(u < pi + pj, "b", "tie"))


def draw(n: int, rng: np.random.Generator, theta: np.ndarray = TRUE, nu: float = NU) -> pd.DataFrame:
    k = len(theta)
    i = rng.integers(0, k, n)
    j = (i + rng.integers(1, k, n)) % k
    return pd.DataFrame({"a": [IDS[x] for x in i], "b": [IDS[x] for x in j], "choice": outcomes(theta, nu, i, j, rng)})


def tau(fitted: pd.DataFrame, theta: np.ndarray = TRUE) -> float:
    return float(kendalltau(fitted.loc[IDS[: len(theta)], "score"], theta).statistic)


# -- fit -------------------------------------------------------------------------------------------------


def test_recovers_the_known_order_over_seeds():
    taus = np.array([tau(ranking.fit(draw(300, np.random.default_rng(seed)))) for seed in range(20)])
    print(f"tau over 20 seeds: median {np.median(taus):.3f}, min {taus.min():.3f}, share >= 0.8 {np.mean(taus >= 0.8)}")
    assert np.mean(taus >= 0.8) >= 0.9
    assert np.median(taus) >= 0.85


def test_result_shape_and_order():
    out = ranking.fit(draw(300, np.random.default_rng(1)))
    assert list(out.columns) == ["score", "lo", "hi", "comparisons", "wins", "ties", "losses"]
    assert out["score"].is_monotonic_decreasing
    assert abs(out["score"].sum()) < 1e-9  # sum-to-zero
    assert (out["lo"] < out["score"]).all() and (out["score"] < out["hi"]).all()
    assert (out["comparisons"] == out["wins"] + out["ties"] + out["losses"]).all()
    assert out["comparisons"].sum() == 2 * 300 and out.attrs["judgments"] == 300
    assert out.index.name == "item" and out.index[0] == "v5"


def test_intervals_cover_the_truth_about_95_percent():
    """200 replications × 6 items: the share of true centred scores inside their 95 % interval."""
    inside = []
    for seed in range(200):
        out = ranking.fit(draw(300, np.random.default_rng(1000 + seed))).loc[IDS]
        inside.append((out["lo"].to_numpy() <= TRUE) & (TRUE <= out["hi"].to_numpy()))
    coverage = float(np.mean(inside))
    print(f"coverage of 95% intervals over 200 fits: {coverage:.3f}")
    assert 0.9 <= coverage <= 0.99


def test_level_widens_the_interval():
    j = draw(200, np.random.default_rng(3))
    narrow, wide = ranking.fit(j, level=0.5), ranking.fit(j, level=0.99)
    assert ((wide["hi"] - wide["lo"]) > (narrow["hi"] - narrow["lo"]).loc[wide.index]).all()
    assert narrow.attrs["level"] == 0.5
    with pytest.raises(ValueError, match="probability"):
        ranking.fit(j, level=95)


def test_tie_parameter_is_estimated():
    rng = np.random.default_rng(11)
    many = ranking.fit(draw(600, rng, nu=2.0))
    assert many["ties"].sum() / 2 > 200  # the data set really has many ties
    assert 1.5 < many.attrs["tie_nu"] < 2.6
    few = ranking.fit(draw(600, rng, nu=0.2))
    assert 0.1 < few.attrs["tie_nu"] < 0.35
    none = ranking.fit(draw(300, rng, nu=0.0))
    assert none["ties"].sum() == 0 and 0 < none.attrs["tie_nu"] < 0.02  # the prior keeps it finite


def test_ties_count_as_evidence_of_closeness():
    # a and b tie all the time, c loses to both: a and b end up level, above c
    rows = [("a", "b", "tie")] * 10 + [("a", "c", "a"), ("b", "c", "a"), ("c", "a", "b"), ("c", "b", "b")] * 4
    out = ranking.fit(pd.DataFrame(rows, columns=["a", "b", "choice"]))
    assert abs(out.loc["a", "score"] - out.loc["b", "score"]) < 1e-6
    assert out.index[-1] == "c"
    assert out.loc["a", "ties"] == 10 and out.loc["a", "wins"] == 8 and out.loc["c", "losses"] == 16
    assert out.attrs["tie_nu"] > 1  # 10 ties in 10 meetings of two equal items


def test_an_item_never_judged_is_listed_last_with_nan():
    j = draw(100, np.random.default_rng(2))
    out = ranking.fit(j, items=[*IDS, "new"])
    assert out.index[-1] == "new"
    assert np.isnan(out.loc["new", ["score", "lo", "hi"]].astype(float)).all()
    assert out.loc["new", "comparisons"] == 0
    assert abs(out["score"].dropna().sum()) < 1e-9  # the judged ones still sum to zero
    same = ranking.fit(j)
    np.testing.assert_allclose(out.loc[IDS, "score"], same.loc[IDS, "score"], atol=1e-7)


def test_an_item_that_always_wins_gets_a_finite_score_and_a_wide_interval():
    rng = np.random.default_rng(5)
    j = draw(200, rng)
    champ = pd.DataFrame({"a": ["champ"] * 12, "b": [IDS[i % 6] for i in range(12)], "choice": ["a"] * 12})
    out = ranking.fit(pd.concat([j, champ], ignore_index=True))
    assert out.index[0] == "champ"
    assert np.isfinite(out.loc["champ", ["score", "lo", "hi"]].astype(float)).all()
    widths = out["hi"] - out["lo"]
    assert widths["champ"] > 1.5 * widths.drop("champ").max()


def test_only_skips_or_nothing():
    skips = pd.DataFrame({"a": ["x", "y"], "b": ["y", "z"], "choice": ["skip", "skip"]})
    out = ranking.fit(skips, items=["x", "y", "z"])
    assert len(out) == 3 and out["score"].isna().all() and (out["comparisons"] == 0).all()
    assert out.attrs["judgments"] == 0
    assert ranking.fit(pd.DataFrame(columns=["a", "b", "choice"])).empty


def test_a_single_judgment():
    out = ranking.fit(pd.DataFrame({"a": ["x"], "b": ["y"], "choice": ["b"]}))
    assert list(out.index) == ["y", "x"]
    assert out.loc["y", "score"] == pytest.approx(-out.loc["x", "score"])
    # one vote: a lean (the N(0, 3²) prior stops it at about 10:1), not a verdict — the interval spans 0
    assert 0 < out.loc["y", "score"] < 1.5 and out.loc["y", "lo"] < 0 < out.loc["x", "hi"]


def test_choices_are_checked():
    bad = pd.DataFrame({"a": ["x", "x"], "b": ["y", "y"], "choice": ["a", "left"]})
    with pytest.raises(ValueError, match="'a', 'b', 'tie', 'skip'.*left"):
        ranking.fit(bad)
    with pytest.raises(ValueError, match="choice must be one of"):
        ranking.fit(pd.DataFrame({"a": ["x"], "b": ["y"], "choice": [None]}))
    with pytest.raises(ValueError, match="missing: choice"):
        ranking.fit(pd.DataFrame({"a": ["x"], "b": ["y"]}))
    with pytest.raises(ValueError, match="not in `items`"):
        ranking.fit(pd.DataFrame({"a": ["x"], "b": ["y"], "choice": ["a"]}), items=["x"])
    with pytest.raises(ValueError, match="against itself"):
        ranking.fit(pd.DataFrame({"a": ["x"], "b": ["x"], "choice": ["a"]}))
    # case and surrounding blanks are forgiven, and a pandas string/categorical column works
    ok = pd.DataFrame({"a": ["x", "y"], "b": ["y", "x"], "choice": pd.Categorical([" A", "Tie"])})
    assert ranking.fit(ok).loc["x", "wins"] == 1


# -- next_pair --------------------------------------------------------------------------------------------


def test_next_pair_basics():
    assert ranking.next_pair([], None) is None
    assert ranking.next_pair(["only"], None) is None
    pair = ranking.next_pair(["x", "y"], None, np.random.default_rng(0))
    assert pair is not None and set(pair) == {"x", "y"}
    j = draw(50, np.random.default_rng(0))
    picks = [ranking.next_pair(IDS, j, np.random.default_rng(42)) for _ in range(3)]
    assert picks[0] == picks[1] == picks[2]  # deterministic with a seeded rng
    assert ranking.next_pair(IDS, j, random.Random(1)) is not None  # a stdlib Random works too


def test_next_pair_asks_about_the_unjudged_pair_and_the_new_item():
    # x–y judged 8 times, y–z 8 times, x–z never: the open pair is x–z
    rows = [("x", "y", "a"), ("x", "y", "b")] * 4 + [("y", "z", "a"), ("y", "z", "b")] * 4
    j = pd.DataFrame(rows, columns=["a", "b", "choice"])
    assert set(ranking.next_pair(["x", "y", "z"], j, np.random.default_rng(0)) or ()) == {"x", "z"}
    # a new item is asked about before anything else
    for seed in range(5):
        assert "new" in (ranking.next_pair([*IDS, "new"], draw(120, np.random.default_rng(seed))) or ())


def test_next_pair_prefers_close_pairs():
    # many judgments: the best pair is between neighbours in the true order, not far apart
    j = draw(400, np.random.default_rng(9))
    for seed in range(5):
        a, b = ranking.next_pair(IDS, j, np.random.default_rng(seed)) or ("", "")
        assert abs(IDS.index(a) - IDS.index(b)) == 1


def test_next_pair_shuffles_the_sides():
    rows = pd.DataFrame([("x", "y", "a")] * 3, columns=["a", "b", "choice"])
    firsts = {ranking.next_pair(["x", "y"], rows, np.random.default_rng(s))[0] for s in range(20)}  # type: ignore[index]
    assert firsts == {"x", "y"}


def _judgments_to_tau(active: bool, seed: int, budget: int = 150, every: int = 5) -> int:
    """Judgments until the fitted order first reaches Kendall τ ≥ 0.8 (budget + every if never)."""
    judge, pick = np.random.default_rng(seed + 500), np.random.default_rng(seed)
    rows: list[tuple[str, str, str]] = []
    for n in range(1, budget + 1):
        if active:
            a, b = ranking.next_pair(IDS, pd.DataFrame(rows, columns=["a", "b", "choice"]), pick) or ("", "")
            i, j = IDS.index(a), IDS.index(b)
        else:
            i, j = (int(x) for x in pick.choice(len(IDS), 2, replace=False))
        choice = outcomes(TRUE, NU, np.array([i]), np.array([j]), judge)[0]
        rows.append((IDS[i], IDS[j], str(choice)))
        if n % every == 0 and tau(ranking.fit(pd.DataFrame(rows, columns=["a", "b", "choice"]), IDS)) >= 0.8:
            return n
    return budget + every


def test_active_pairs_reach_the_order_no_slower_than_random_pairs():
    active = [_judgments_to_tau(True, seed) for seed in range(16)]
    rand = [_judgments_to_tau(False, seed) for seed in range(16)]
    print(f"judgments to tau >= 0.8: active median {np.median(active)}, random median {np.median(rand)}")
    assert np.median(active) <= np.median(rand)
    assert np.mean(active) <= np.mean(rand)


# -- variance_share ----------------------------------------------------------------------------------------


def crossed(prompt_sd: float, seed_sd: float, noise_sd: float, rng: np.random.Generator, p: int = 5, s: int = 6):
    pe, se = rng.normal(0, prompt_sd, p), rng.normal(0, seed_sd, s)
    rows = [(f"prompt {i}", 100 + k, pe[i] + se[k] + rng.normal(0, noise_sd)) for i in range(p) for k in range(s)]
    return pd.DataFrame(rows, columns=["prompt", "seed", "sharpness"]).astype({"seed": "Int64"})


def test_prompt_dominated_study():
    vs = ranking.variance_share(crossed(3.0, 0.3, 0.3, np.random.default_rng(0)), "sharpness")
    assert list(vs.index) == ["prompt", "seed", "residual"]
    assert vs.loc["prompt", "share"] > 0.85
    assert vs["share"].sum() == pytest.approx(1.0)
    assert vs.loc["prompt", "p"] < 1e-6
    assert list(vs["df"]) == [4, 5, 20] and (vs["n"] == 30).all() and vs.attrs["balanced"]


def test_seed_dominated_study():
    vs = ranking.variance_share(crossed(0.3, 3.0, 0.3, np.random.default_rng(1)), "sharpness")
    assert vs.loc["seed", "share"] > 0.85 and vs.loc["prompt", "share"] < 0.1
    assert vs["share"].sum() == pytest.approx(1.0)
    assert vs.loc["seed", "p"] < 1e-6


def test_noise_only_gives_insignificant_factors():
    vs = ranking.variance_share(crossed(0.0, 0.0, 1.0, np.random.default_rng(2)), "sharpness")
    assert vs.loc["residual", "share"] > 0.4 and vs.loc["prompt", "p"] > 0.01


def test_unbalanced_missing_and_nan_rows():
    df = crossed(3.0, 0.3, 0.3, np.random.default_rng(3))
    df.loc[[0, 7, 13], "sharpness"] = np.nan  # three failed measurements
    df = pd.concat([df, df.iloc[[20, 21]]], ignore_index=True)  # two repeats
    df["sharpness"] = df["sharpness"].astype("Float64")
    vs = ranking.variance_share(df, "sharpness")
    assert (vs["n"] == 29).all() and not vs.attrs["balanced"]
    assert vs["share"].sum() == pytest.approx(1.0) and vs.loc["prompt", "share"] > 0.8


def test_one_factor_and_no_residual():
    df = crossed(3.0, 0.3, 0.3, np.random.default_rng(4))
    one = ranking.variance_share(df, "sharpness", by="prompt")  # a bare string works as one factor
    assert list(one.index) == ["prompt", "residual"] and one["share"].sum() == pytest.approx(1.0)
    single = df.groupby("prompt", as_index=False).first()  # one run per prompt: nothing left over
    vs = ranking.variance_share(single, "sharpness", by=["prompt"])
    assert vs.loc["residual", "df"] == 0 and np.isnan(vs.loc["prompt", "p"])
    flat = df.assign(sharpness=1.0)
    assert ranking.variance_share(flat, "sharpness")["share"].isna().all()
    with pytest.raises(ValueError, match="no column 'clip'"):
        ranking.variance_share(df, "clip")
