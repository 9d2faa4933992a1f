"""A self-contained HTML report of a set of runs: the videos, a contact sheet, the cost/latency plots, the
quality-per-dollar frontier and the log table with the quality figures, written to one folder (what
`wanlab demo` produces)."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _hosts as hosts
from . import plots
from .cost import money, sums
from .media import MediaStore, contact_sheet

if TYPE_CHECKING:
    import pandas as pd

TABLE_COLUMNS = [
    "run_id",
    "model",
    "resolution",
    "duration",
    "seed",
    "status",
    "latency_s",
    "queue_s",
    "run_s",
    "polls",
    "est_cost",
    "cost",
    "currency",
    "width",
    "height",
    "frames",
    "bytes",
    # outcome figures (wanlab.quality; docs/QUALITY.md)
    "flicker",
    "frozen",
    "motion",
    "sharpness",
    "exposure",
    "conforms",
]


_SIM_NOTE = (
    "Videos and timings come from the offline simulator: they show the workflow, not WAN's output or the "
    "hosts' real latency. Costs are estimates from the catalog's dated, third-party price rows."
)


def _label(row) -> str:
    return f"{row['resolution']} · {row['duration']} s · seed {row['seed']}"


def write_report(df: pd.DataFrame, out: str | os.PathLike, store: MediaStore, title: str = "wanlab report") -> Path:
    """Write `out/report.html` (+ PNGs) for the runs in `df`; video links are relative to `out`.

    Figures are drawn on their own Agg canvas, without pyplot: the kernel's matplotlib backend and its
    list of open figures are left as they were."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = df[(df["status"].astype("string") == "SUCCEEDED") & df["path"].notna()]
    figures = []
    draws: list[tuple[str, Callable[..., Any]]] = [
        ("latency_heatmap", plots.latency_heatmap),
        ("cost_heatmap", plots.cost_heatmap),
        ("latency_vs_duration", plots.latency_vs_duration),
        ("estimate_vs_actual", plots.estimate_vs_actual),
        ("queue_vs_run", plots.queue_vs_run),
        ("spend_over_time", plots.spend_over_time),
    ]
    if done["sharpness"].notna().any():  # measured: quality per dollar over the grid
        draws.append(("frontier_sharpness", lambda d, ax: plots.frontier(d, quality="sharpness", ax=ax)))
    panels = len(plots.currencies(df))  # the cost figures draw one panel per currency
    for name, draw in draws:
        wide = panels if name in ("cost_heatmap", "estimate_vs_actual", "spend_over_time") else 1
        fig = Figure(figsize=(6 * wide, 4), layout="constrained")
        FigureCanvasAgg(fig)
        draw(df, ax=fig.subplots())
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        figures.append(path.name)
    sheet: Path | None = None
    if len(done):
        sheet = out / "contact_sheet.png"  # contact_sheet writes it and returns this path
        contact_sheet(list(done["path"]), [_label(r) for _, r in done.iterrows()], cols=4, out=sheet)
    cards = []
    for _, row in done.iterrows():
        video = Path(row["path"])
        poster = base64.b64encode(store.poster(video, width=320).read_bytes()).decode()
        rel = os.path.relpath(video, out)
        cards.append(
            f"<figure><video controls muted playsinline preload='none' width='320' "
            f"poster='data:image/jpeg;base64,{poster}' src='{html.escape(rel)}'></video>"
            f"<figcaption>{html.escape(_label(row))}<br><small>{html.escape(str(row['prompt'])[:80])}"
            f"</small></figcaption></figure>"
        )
    cols = [c for c in TABLE_COLUMNS if c in df.columns]
    table = df[cols].to_html(index=False, na_rep="—", float_format=lambda x: f"{x:.3g}")
    source = plots.source(df)
    spend = money(sums(df["cost"], df["currency"]))  # each currency's total: never one sum
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
.videos {{ display: flex; flex-wrap: wrap; gap: 12px; }}
figure {{ margin: 0; }} figcaption {{ font-size: 13px; }}
.plots img {{ width: 480px; margin: 4px; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; font-size: 12px; }} td, th {{ border: 1px solid #ccc; padding: 2px 6px; }}
.note {{ background: #fff6d6; padding: 6px 10px; border-radius: 4px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">Data source: <b>{html.escape(source)}</b>. Spend: <b>{html.escape(spend)}</b>.
{_SIM_NOTE if any(hosts.is_sim(h) for h in df["host"].dropna().unique()) else ""}</p>
<h2>Videos ({len(done)} of {len(df)} runs)</h2><div class="videos">{"".join(cards)}</div>
<h2>Contact sheet</h2>{f'<img src="{sheet.name}" style="max-width:100%">' if sheet else "<p>no finished runs</p>"}
<h2>Cost, latency and quality</h2><div class="plots">{"".join(f'<img src="{f}">' for f in figures)}</div>
<h2>Experiment log</h2>{table}
</body></html>"""
    report = out / "report.html"
    report.write_text(page, encoding="utf-8")
    return report
