"""Charts as Vega-Lite specs (Altair), rendered to inline SVG by vl-convert: no scripts, fonts or
images to fetch, so report.html works offline and prints."""

from __future__ import annotations

import altair as alt
import polars as pl
import vl_convert as vlc

SEVERITY_COLORS = alt.Scale(domain=["error", "warning", "info"], range=["#b3261e", "#a15c00", "#2f5d8a"])
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"


def _svg(chart: alt.TopLevelMixin) -> str:
    # text readable at the size the page shows it (the SVG scales to its column), legends never clipped
    # (padding: the browser's system font runs wider than the one the SVG was measured with)
    spec = (chart.properties(padding={"left": 48, "right": 12, "top": 6, "bottom": 6})
            .configure(font=FONT).configure_view(strokeWidth=0)
            .configure_axis(labelFontSize=13, titleFontSize=13)
            .configure_legend(labelFontSize=13, titleFontSize=13, labelLimit=0, orient="bottom")).to_dict()
    svg = vlc.vegalite_to_svg(spec)
    return svg[svg.index("<svg"):] if "<svg" in svg else svg


def warm() -> None:
    """Render one empty chart: vl-convert starts its JavaScript engine on the first call (~0.7 s), which
    the audit does while it waits for the data-quality worker instead of in the outputs stage."""
    vlc.vegalite_to_svg({"mark": "bar", "data": {"values": []}})


def _count_axis(top: int | None) -> alt.Axis:
    """An axis of whole counts: integer ticks only (never 0.2, 0.4 ... for a handful of findings)."""
    top = int(top or 0)
    if top <= 10:
        return alt.Axis(format="d", values=list(range(top + 1)))
    return alt.Axis(format=",d", tickMinStep=1)


def _records(frame: pl.DataFrame) -> list[dict]:
    return [{k: (str(v) if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in frame.to_dicts()]


RULE_LABEL_CHARS = 44       # ~300 px of 13 px text; the table under the chart has the full names


def findings_by_rule(by_rule: pl.DataFrame) -> str | None:
    if by_rule.is_empty():
        return None
    # long names are cut here, by characters, rather than by Vega's labelLimit: that measures the text
    # of every label again and again and took ~0.5 s of the sample's ~1 s of outputs. The rule id
    # leads each label, so cut labels stay distinct.
    by_rule = by_rule.with_columns(
        pl.when(pl.col("rule").str.len_chars() > RULE_LABEL_CHARS)
        .then(pl.col("rule").str.slice(0, RULE_LABEL_CHARS - 1) + "…").otherwise(pl.col("rule")).alias("rule"))
    return _svg(alt.Chart(alt.Data(values=_records(by_rule))).mark_bar().encode(
        x=alt.X("findings:Q", title="findings", axis=_count_axis(by_rule["findings"].max())),
        y=alt.Y("rule:N", sort=None, title=None, axis=alt.Axis(labelLimit=0)),
        color=alt.Color("severity:N", scale=SEVERITY_COLORS, title="severity"),
        tooltip=["rule:N", "findings:Q", "dollars_at_risk:Q"],
    ).properties(width=220, height=max(120, 22 * by_rule.height)))


def dollars_by(frame: pl.DataFrame, dim: str, title: str, top: int = 10) -> str | None:
    data = frame.filter(pl.col("dollars_at_risk") > 0).head(top)
    if data.is_empty():
        return None
    return _svg(alt.Chart(alt.Data(values=_records(data.with_columns(pl.col(dim).cast(pl.String))))).mark_bar(
        color="#b3261e").encode(
        x=alt.X("dollars_at_risk:Q", title="dollars at risk (errors)", axis=alt.Axis(format="$,.0f")),
        y=alt.Y(f"{dim}:N", sort="-x", title=title),
    ).properties(width=300, height=max(80, 20 * data.height)))


def trend(frame: pl.DataFrame, measure: str, title: str) -> str | None:
    if frame.is_empty() or frame["run_id"].n_unique() < 2:
        return None
    # one point per run: runs of the same minute stay apart (time to the second and the run id's suffix)
    data = frame.with_columns((pl.col("started_at").dt.strftime("%Y-%m-%d %H:%M:%S") + " ·"
                               + pl.col("run_id").str.slice(-6)).alias("run"))
    axis = alt.Axis(format="$,.0f") if measure == "dollars_at_risk" else _count_axis(frame[measure].max())
    return _svg(alt.Chart(alt.Data(values=_records(data.select("run", "family", measure)))).mark_line(point=True).encode(
        x=alt.X("run:O", title="run", sort=None, axis=alt.Axis(labelAngle=-30, labelLimit=240)),
        y=alt.Y(f"{measure}:Q", title=title, axis=axis),
        color=alt.Color("family:N", title="family"),
    ).properties(width=460, height=220))
