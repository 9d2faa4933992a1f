"""wanlab.catalog: model look-ups (did-you-mean, traps, other-host twins), defaults per host/mode/region,
output sizes, and the price table."""
from __future__ import annotations

import re

import pytest

from wanlab import catalog
from wanlab.catalog import CATALOG, KNOWN_TRAPS, default_model, equivalent, get_model, models, output_size
from wanlab.errors import CatalogError
from wanlab.prices import PriceRow, PriceTable, default_prices

# --------------------------------------------------------------------------------------------------
# get_model
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("typo, suggestion", [
    ("wan2.1-t2v-turbo", "wanx2.1-t2v-turbo"),
    ("wan2.7-t2", "wan2.7-t2v"),
    ("wan2.7-video-edit", "wan2.7-videoedit"),
    ("wan2.6-i2v-flsh", "wan2.6-i2v-flash"),
])
def test_get_model_did_you_mean(typo, suggestion):
    with pytest.raises(CatalogError, match=rf"model={typo!r} is not a known WAN model ID; did you mean") as info:
        get_model(typo)
    m = re.search(r"did you mean (.*)\?", str(info.value))
    assert m and repr(suggestion) in m.group(1).split(", ")[:2]


def test_get_model_did_you_mean_first_choice_for_stale_wan21_prefix():
    with pytest.raises(CatalogError, match=r"did you mean 'wanx2\.1-t2v-turbo',"):
        get_model("wan2.1-t2v-turbo")


def test_get_model_unrelated_id_points_to_models():
    with pytest.raises(CatalogError, match=r"see wanlab\.catalog\.models\(host=None\)"):
        get_model("sora-2")


@pytest.mark.parametrize("trap, hint", [
    ("wan2.7-flf2v", r"first \+ last frame is 'wan2\.7-i2v' with two media items"),
    ("wan2.7-kf2v", r"'wan2\.7-i2v'"),
    ("wan2.7-grid", r"'wan2\.7-r2v' \(wanlab\.Grid9 composes it\)"),
    ("wan2.7-edit", r"the editor is 'wan2\.7-videoedit'"),
    ("wan2.7-video-extend", r"extend is 'wan2\.7-i2v' with a first_clip \(wanlab\.Extend"),
    ("alibaba/wan-2.7/first-last-frame-to-video", r"'alibaba/wan-2\.7/image-to-video' with `image` and `last_image`"),
])
def test_get_model_known_traps(trap, hint):
    with pytest.raises(CatalogError, match=hint):
        get_model(trap)


def test_traps_are_not_catalog_ids():
    assert not set(KNOWN_TRAPS) & set(CATALOG)


@pytest.mark.parametrize("model_id, host, twin", [
    ("wan2.7-t2v", "wavespeed", "alibaba/wan-2.7/text-to-video"),
    ("wan2.7-i2v", "wavespeed", "alibaba/wan-2.7/image-to-video"),
    ("wan2.7-r2v", "wavespeed", "alibaba/wan-2.7/reference-to-video"),
    ("wan2.7-videoedit", "wavespeed", "alibaba/wan-2.7/video-edit"),
    ("wan2.7-i2v-2026-04-25", "wavespeed", "alibaba/wan-2.7/image-to-video"),  # most modes in common
    ("wan2.6-t2v", "wavespeed", "alibaba/wan-2.6/text-to-video"),
    ("alibaba/wan-2.7/text-to-video", "dashscope", "wan2.7-t2v"),
    ("alibaba/wan-2.7/image-to-video", "dashscope", "wan2.7-i2v"),
    ("alibaba/wan-2.7/reference-to-video", "dashscope", "wan2.7-r2v"),
    ("alibaba/wan-2.7/video-edit", "dashscope", "wan2.7-videoedit"),
    ("alibaba/wan-2.7/video-extend", "dashscope", "wan2.7-i2v"),
])
def test_get_model_other_host_names_the_twin(model_id, host, twin):
    other = "dashscope" if host == "wavespeed" else "wavespeed"
    with pytest.raises(CatalogError, match=rf"is a {other} model ID; on {host} use model={re.escape(repr(twin))}"):
        get_model(model_id, host=host)
    assert equivalent(CATALOG[model_id], host).id == twin


def test_the_twin_on_another_host_can_be_asked_for_a_mode():
    # wan2.7-i2v extends too; on WaveSpeed, extend is its own path
    with pytest.raises(CatalogError, match=r"on wavespeed use model='alibaba/wan-2\.7/video-extend'"):
        get_model("wan2.7-i2v", host="wavespeed", mode="extend")
    assert equivalent(CATALOG["wan2.7-i2v"], "wavespeed", "i2v").id == "alibaba/wan-2.7/image-to-video"
    assert equivalent(CATALOG["wan2.7-t2v"], "wavespeed", "extend") is None


def test_get_model_right_host_and_no_host():
    for spec in CATALOG.values():
        assert get_model(spec.id) is spec
        assert get_model(spec.id, host=spec.host) is spec


def test_get_model_unknown_on_host_names_host():
    with pytest.raises(CatalogError, match=r"not a known WAN model ID on wavespeed"):
        get_model("alibaba/wan-2.7/txt-to-video", host="wavespeed")


# --------------------------------------------------------------------------------------------------
# defaults per host, mode, region
# --------------------------------------------------------------------------------------------------

DEFAULTS = {
    ("dashscope", "t2v"): "wan2.7-t2v", ("dashscope", "i2v"): "wan2.7-i2v", ("dashscope", "flf2v"): "wan2.7-i2v",
    ("dashscope", "grid9"): "wan2.7-r2v", ("dashscope", "ref2v"): "wan2.7-r2v",
    ("dashscope", "edit"): "wan2.7-videoedit", ("dashscope", "extend"): "wan2.7-i2v",
    ("wavespeed", "t2v"): "alibaba/wan-2.7/text-to-video", ("wavespeed", "i2v"): "alibaba/wan-2.7/image-to-video",
    ("wavespeed", "flf2v"): "alibaba/wan-2.7/image-to-video",
    ("wavespeed", "grid9"): "alibaba/wan-2.7/reference-to-video",
    ("wavespeed", "ref2v"): "alibaba/wan-2.7/reference-to-video",
    ("wavespeed", "edit"): "alibaba/wan-2.7/video-edit",
    ("wavespeed", "extend"): "alibaba/wan-2.7/video-extend",
}


@pytest.mark.parametrize("host, mode", list(DEFAULTS))
def test_default_model_per_host_and_mode(host, mode):
    spec = default_model(host, mode)
    assert spec.id == DEFAULTS[host, mode]
    assert spec.host == host and mode in spec.modes and spec.version == "2.7"
    for region in ("singapore", "beijing"):
        assert default_model(host, mode, region=region).id == spec.id


@pytest.mark.parametrize("mode, model_id", [("t2v", "wan2.6-t2v"), ("i2v", "wan2.6-i2v"), ("ref2v", "wan2.6-r2v")])
def test_virginia_defaults_to_wan26(mode, model_id):
    spec = default_model("dashscope", mode, region="virginia")
    assert spec.id == model_id and "virginia" in spec.regions and mode in spec.modes


@pytest.mark.parametrize("mode", ["flf2v", "grid9", "edit", "extend"])
def test_virginia_lacks_a_mode(mode):
    with pytest.raises(CatalogError, match=rf"DashScope virginia serves WAN 2\.6 only and no 2\.6 model there does "
                                           rf"{re.escape(catalog.MODE_NAMES[mode])}; use region='singapore' or "
                                           rf"'beijing' for WAN 2\.7"):
        default_model("dashscope", mode, region="virginia")


def test_default_model_unknown_mode():
    with pytest.raises(CatalogError, match=r"mode='v2v' is not a wanlab mode; use one of t2v, i2v"):
        default_model("dashscope", "v2v")


def test_wan27_not_served_in_virginia():
    assert not [m for m in models(host="dashscope", region="virginia") if m.version == "2.7"]
    ds_virginia = {m.id for m in models(host="dashscope", region="virginia")}
    assert {"wan2.6-t2v", "wan2.6-t2v-us", "wan2.6-i2v-us"} <= ds_virginia
    assert "wan2.6-t2v-us" not in {m.id for m in models(host="dashscope", region="singapore")}


def test_models_newest_first_and_filters():
    ms = models(host="dashscope", mode="t2v")
    versions = [tuple(int(p) for p in m.version.split(".")) for m in ms]
    assert versions == sorted(versions, reverse=True) and ms[0].version == "2.7"
    assert {m.id for m in models(host="wavespeed", mode="grid9")} == {"alibaba/wan-2.7/reference-to-video"}
    assert all(m.host == "wavespeed" for m in models(host="wavespeed"))


def test_catalog_rows_are_consistent():
    for m in CATALOG.values():
        assert m.host in catalog.HOSTS and set(m.modes) <= set(catalog.MODES) and m.modes
        assert set(m.resolutions) <= set(catalog.RESOLUTIONS)
        assert m.durations == tuple(sorted(m.durations))
        if m.version == "2.7":
            assert "480P" not in m.resolutions, m.id        # WIRE §2: no 480P on 2.7
        if m.host == "wavespeed":
            assert m.protocol == "flat" and not m.regions
        else:
            assert m.protocol == ("media" if m.version == "2.7" else "legacy")
            assert m.regions and set(m.regions) <= set(catalog.REGIONS)


def test_model_limits_per_wire():
    assert CATALOG["wan2.7-r2v"].duration_range(has_video=True) == tuple(range(2, 11))
    assert CATALOG["wan2.7-r2v"].duration_range(has_video=False) == tuple(range(2, 16))
    assert CATALOG["wan2.7-r2v"].max_refs == 5 and CATALOG["wan2.6-r2v"].max_refs == 3
    assert CATALOG["wan2.7-videoedit"].max_edit_images == 3
    assert CATALOG["wan2.7-videoedit"].accepts_zero_duration
    assert CATALOG["wan2.5-t2v-preview"].durations == (5, 10)
    assert CATALOG["wan2.6-t2v-us"].durations == (5, 10)
    # extend: wan2.7-i2v's 2–15 s total on DashScope, 5–15 s total on WaveSpeed (WIRE §1)
    assert "extend" in CATALOG["wan2.7-i2v"].modes and CATALOG["wan2.7-i2v"].durations == tuple(range(2, 16))
    assert CATALOG["alibaba/wan-2.7/video-extend"].durations == tuple(range(5, 16))
    assert "extend" not in CATALOG["alibaba/wan-2.7/image-to-video"].modes


def test_expected_latency_grows_with_duration_and_resolution():
    spec = CATALOG["wan2.7-t2v"]
    assert spec.expected_latency("720P", 10) > spec.expected_latency("720P", 5)
    assert spec.expected_latency("1080P", 5) > spec.expected_latency("720P", 5)


# --------------------------------------------------------------------------------------------------
# output sizes (WIRE §2)
# --------------------------------------------------------------------------------------------------

SIZES = {
    ("720P", "16:9"): (1280, 720), ("720P", "9:16"): (720, 1280), ("720P", "1:1"): (960, 960),
    ("720P", "4:3"): (1104, 832), ("720P", "3:4"): (832, 1104),
    ("1080P", "16:9"): (1920, 1080), ("1080P", "9:16"): (1080, 1920), ("1080P", "1:1"): (1440, 1440),
    ("1080P", "4:3"): (1648, 1248), ("1080P", "3:4"): (1248, 1648),
}


@pytest.mark.parametrize("resolution, ratio", list(SIZES))
def test_output_size_per_ratio(resolution, ratio):
    assert output_size(resolution, ratio) == SIZES[resolution, ratio]


@pytest.mark.parametrize("ratio", catalog.RATIOS)
def test_output_size_480p_matches_ratio(ratio):
    w, h = output_size("480P", ratio)
    a, b = (int(x) for x in ratio.split(":"))
    assert abs(w / h - a / b) / (a / b) < 0.05
    assert w % 16 == 0 and h % 16 == 0
    w7, h7 = output_size("720P", ratio)
    assert w * h < w7 * h7
    if ratio == "16:9":
        assert (w, h) == (832, 480)      # the 2.5 usage's video_ratio "832*480"


def test_output_size_default_ratio_is_16_9():
    assert output_size("720P") == (1280, 720)


@pytest.mark.parametrize("resolution", ["480P", "720P", "1080P"])
@pytest.mark.parametrize("aspect", [16 / 9, 9 / 16, 1.0, 4 / 3, 3 / 4, 2.35, 0.5])
def test_output_size_for_image_aspect(resolution, aspect):
    w, h = output_size(resolution, image_aspect=aspect)
    assert w % 16 == 0 and h % 16 == 0
    area = output_size(resolution, "16:9")[0] * output_size(resolution, "16:9")[1]
    assert abs(w * h - area) / area < 0.05
    assert abs(w / h - aspect) / aspect < 0.04
    if aspect == 16 / 9 and resolution == "720P":
        assert (w, h) == (1280, 720)


# --------------------------------------------------------------------------------------------------
# prices
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return default_prices()


@pytest.mark.parametrize("region, model, res, amount, currency", [
    ("singapore", "wan2.7-t2v", "720P", 0.10, "USD"),
    ("singapore", "wan2.7-r2v", "1080P", 0.15, "USD"),
    ("singapore", "wan2.7-videoedit", "720P", 0.10, "USD"),
    ("beijing", "wan2.7-i2v", "720P", 0.6, "CNY"),
    ("beijing", "wan2.7-t2v", "1080P", 1.0, "CNY"),
    pytest.param("beijing", "wan2.6-t2v", "720P", 0.6, "CNY"),
    pytest.param("beijing", "wan2.6-i2v", "1080P", 1.0, "CNY"),
    ("virginia", "wan2.6-t2v", "720P", 0.086, "USD"),
    ("virginia", "wan2.6-i2v", "1080P", 0.143, "USD"),
    ("virginia", "wan2.6-t2v-us", "720P", 0.10, "USD"),
    ("virginia", "wan2.6-i2v-us", "1080P", 0.15, "USD"),
])
def test_dashscope_price_by_region(prices, region, model, res, amount, currency):
    row = prices.lookup("dashscope", region, model, res)
    assert row is not None and row.amount == pytest.approx(amount) and row.currency == currency
    p = prices.price("dashscope", region, model, res, 5)
    assert p.amount == pytest.approx(amount * 5) and p.currency == currency and p.row is row


@pytest.mark.parametrize("model, res, amount", [
    ("alibaba/wan-2.7/text-to-video", "720P", 0.10), ("alibaba/wan-2.7/image-to-video", "1080P", 0.15),
    ("alibaba/wan-2.7/video-edit", "720P", 0.10), ("alibaba/wan-2.6/text-to-video", "1080P", 0.15),
    ("alibaba/wan-2.5/text-to-video", "480P", 0.05), ("alibaba/wan-2.5/image-to-video", "720P", 0.10),
])
def test_wavespeed_price_per_second(prices, model, res, amount):
    p = prices.price("wavespeed", None, model, res, 10)
    assert p.amount == pytest.approx(amount * 10) and p.currency == "USD"


@pytest.mark.parametrize("res, seconds, amount", [
    ("720P", 5, 1.00), ("720P", 10, 1.50), ("720P", 3, 1.00), ("720P", 7, 1.50),
    ("1080P", 5, 1.60), ("1080P", 10, 2.40), ("1080P", 6, 2.40),
])
def test_wavespeed_r2v_clip_pricing(prices, res, seconds, amount):
    p = prices.price("wavespeed", None, "alibaba/wan-2.7/reference-to-video", res, seconds)
    assert p is not None and p.amount == pytest.approx(amount) and p.currency == "USD"
    assert p.row.per.startswith("clip:") and seconds <= int(p.row.per.split(":")[1])
    assert str(p) == f"{amount:.4g} USD"


@pytest.mark.parametrize("host, region, model, res", [
    ("dashscope", "singapore", "wan2.5-t2v-preview", "480P"),
    ("dashscope", "singapore", "wan2.7-t2v", "480P"),
    ("dashscope", "singapore", "wanx2.1-t2v-turbo", "720P"),
    ("wavespeed", None, "wavespeed-ai/wan-2.2/t2v-480p", "480P"),
    ("wavespeed", None, "alibaba/wan-2.7/text-to-video", "480P"),
])
def test_unknown_price_is_none_not_zero(prices, host, region, model, res):
    assert prices.lookup(host, region, model, res) is None
    assert prices.price(host, region, model, res, 5) is None


def test_override_wins_and_leaves_the_original(prices):
    t2 = prices.override("dashscope", "wan2.7-t2v", "720P", 0.2, region="singapore", date="2026-10-01")
    p = t2.price("dashscope", "singapore", "wan2.7-t2v", "720P", 5)
    assert p.amount == pytest.approx(1.0) and p.row.source == "user" and p.row.confidence == "user"
    assert prices.price("dashscope", "singapore", "wan2.7-t2v", "720P", 5).amount == pytest.approx(0.5)
    # other models of the prefix keep the table's price
    assert t2.price("dashscope", "singapore", "wan2.7-i2v", "720P", 5).amount == pytest.approx(0.5)


def test_override_prefix_row_and_any_region(prices):
    t2 = prices.override("dashscope", "wan2.7-*", "720P", 0.07)
    for region in ("singapore", "beijing"):
        assert t2.price("dashscope", region, "wan2.7-r2v", "720P", 10).amount == pytest.approx(0.7)


def test_override_per_second_replaces_clip_pricing(prices):
    t2 = prices.override("wavespeed", "alibaba/wan-2.7/reference-to-video", "720P", 0.12)
    assert t2.price("wavespeed", None, "alibaba/wan-2.7/reference-to-video", "720P", 5).amount == pytest.approx(0.6)


def test_every_price_row_has_source_and_date(prices):
    assert len(prices.rows) >= 20
    for row in prices.rows:
        assert row.source.strip(), row
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row.date), row
        assert row.confidence in ("doc", "2nd"), row
        assert row.currency in ("USD", "CNY"), row
        assert row.per == "second" or re.fullmatch(r"clip:\d+", row.per), row
        assert row.amount > 0 and row.host in catalog.HOSTS
        assert row.resolution in catalog.RESOLUTIONS
        # every row prices at least one catalog model
        assert any(row.matches(m.host, row.region or None, m.id, row.resolution) for m in CATALOG.values()), row


# No dated source prices WaveSpeed's video-extend: its estimate is "unknown", never zero.
UNPRICED = {"alibaba/wan-2.7/video-extend"}


def test_every_wan27_default_has_a_price(prices):
    for (host, mode), mid in DEFAULTS.items():
        region = "singapore" if host == "dashscope" else None
        for res in ("720P", "1080P"):
            price = prices.price(host, region, mid, res, 5)
            assert (price is None) == (mid in UNPRICED), (mid, res)


def test_from_csv_skips_comments_and_blank_hosts():
    text = ("host,region,model,resolution,amount,currency,per,source,date,confidence\n"
            "# a comment,,,,,,,,,\n"
            ",,,,,,,,,\n"
            "wavespeed,,m/x,720P,0.5,USD,second,test,2026-01-01,doc\n")
    t = PriceTable.from_csv(text)
    assert len(t.rows) == 1 and t.rows[0].amount == 0.5


def test_unknown_price_unit_raises():
    row = PriceRow("wavespeed", "", "m/x", "720P", 1.0, "USD", "minute", "test", "2026-01-01", "doc")
    with pytest.raises(CatalogError, match=r"unknown unit per='minute'"):
        PriceTable([row]).price("wavespeed", None, "m/x", "720P", 5)


def test_clip_price_beyond_largest_clip_is_unknown(prices):
    assert prices.price("wavespeed", None, "alibaba/wan-2.7/reference-to-video", "720P", 15) is None


def test_clip_override_wins(prices):
    t2 = prices.override("wavespeed", "alibaba/wan-2.7/reference-to-video", "720P", 0.80, per="clip:5")
    p = t2.price("wavespeed", None, "alibaba/wan-2.7/reference-to-video", "720P", 5)
    assert p.amount == pytest.approx(0.80)
