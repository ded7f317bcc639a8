"""Small report figures: PNG bytes from matplotlib, an interactive scatter as HTML from plotly.

Figures are built on `matplotlib.figure.Figure` directly instead of pyplot, so no global backend is set,
no figure is left open between calls, and the functions are safe in threads (matplotlib's "Embedding in a
web application server" guide). PNGs are kept small (6 x 4 in at 80 dpi, ~480 x 320 px) because they go
into Dagster metadata as base64 Markdown (`png_markdown`).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

if TYPE_CHECKING:
    import plotly.graph_objects as go

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGSIZE = (6.0, 4.0)  # inches
DPI = 80
MAX_LEGEND_GROUPS = 10  # tab10 colours; smaller groups are drawn grey as "other"
MAX_ANNOTATED_CELLS = 15  # per side; above this, heatmap cells are too small for numbers
MAX_HOVER_CHARS = 200  # long article texts would make the HTML and its tooltips unwieldy
GREY = "#bbbbbb"
WEBGL_MIN_POINTS = 1000  # above this, WebGL traces, as plotly express switches to: SVG gets slow to pan
# Fixed colours where the groups have a meaning: red/grey/green for sentiment, blue/grey/red for leaning (the
# usual US convention), grey for noise and missing.
FIXED_COLOURS = {"negative": "#d62728", "neutral": "#7f7f7f", "positive": "#2ca02c", "-1": GREY, "nan": GREY,
                 "None": GREY, "left": "#1f77b4", "center": "#7f7f7f", "right": "#d62728"}


def scatter_png(points: pd.DataFrame, color_by: str) -> bytes:
    """Scatter `points` (columns `x`, `y` and `color_by`, e.g. `cluster_outlets(...).points`) as PNG bytes.

    `color_by` is treated as categorical: the 10 largest groups get their own colour and legend entry, the
    rest and HDBSCAN noise (cluster -1) are drawn grey.
    """
    _check_columns(points, ["x", "y", color_by], where="scatter_png")
    groups = points[color_by].astype(str)
    top = [g for g in groups.value_counts().index if g != "-1"][:MAX_LEGEND_GROUPS]
    fig, ax = _figure()
    background = ~groups.isin(top)
    if background.any():
        ax.scatter(points.loc[background, "x"], points.loc[background, "y"], s=6, c=GREY, label="other / noise")
    colours = [f"C{i}" for i in range(MAX_LEGEND_GROUPS)]
    for colour, group in zip(colours, sorted(top, key=_natural_key)):
        mask = groups == group
        ax.scatter(points.loc[mask, "x"], points.loc[mask, "y"], s=8, c=colour, label=group)
    ax.set(title=f"Articles by {color_by}", xticks=[], yticks=[])
    ax.legend(fontsize=6, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return _to_png(fig)


def leaning_map_png(points: pd.DataFrame, *, score: str = "leaning_score", max_labels: int = 12,
                    title: str = "Outlet map coloured by leaning",
                    colorbar_label: str = "leaning (-1 left, +1 right)") -> bytes:
    """The article map (columns `x`, `y`, `outlet` and `score`) coloured on a diverging scale, -1 (blue, left)
    .. +1 (red, right); articles without a score are grey. Each outlet's centroid on the map is drawn as a
    ringed dot in its colour, and the `max_labels` outlets with the most articles are named, so one can see
    whether the map's neighbourhoods lean one way."""
    _check_columns(points, ["x", "y", "outlet", score], where="leaning_map_png")
    values = pd.to_numeric(points[score], errors="coerce")
    fig, ax = _figure()
    missing = values.isna().to_numpy()
    if missing.any():
        ax.scatter(points.loc[missing, "x"], points.loc[missing, "y"], s=5, c=GREY, label="no score")
    shared = {"cmap": "RdBu_r", "vmin": -1.0, "vmax": 1.0}
    image = ax.scatter(points.loc[~missing, "x"], points.loc[~missing, "y"], s=6, c=values[~missing], alpha=0.6,
                       **shared)
    centroids = points.assign(_score=values).groupby(points["outlet"].astype(str)).agg(
        x=("x", "mean"), y=("y", "mean"), score=("_score", "mean"), n=("x", "size")).dropna(subset=["score"])
    ax.scatter(centroids["x"], centroids["y"], s=40, c=centroids["score"], edgecolors="black", linewidths=0.8,
               **shared)
    for outlet, row in centroids.nlargest(max_labels, "n", keep="first").iterrows():
        ax.annotate(str(_shorten(outlet))[:24], (row["x"], row["y"]), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=colorbar_label)
    ax.set(title=title, xticks=[], yticks=[])
    if missing.any():
        ax.legend(fontsize=6, loc="lower right", frameon=False)
    return _to_png(fig)


def leaning_png(outlets: pd.DataFrame, *, title: str, max_outlets: int = 40) -> bytes:
    """Outlets on the bias axis (a `leaning.LEANING_COLUMNS` frame) as dots with interval bars, coloured by
    reference rating (blue / grey / red, black for unrated).

    Only the `max_outlets` outlets with the most articles are drawn, so the labels stay readable.
    """
    _check_columns(outlets, ["outlet", "n_articles", "score", "score_low", "score_high", "reference_leaning"],
                   where="leaning_png")
    shown = outlets.nlargest(max_outlets, "n_articles", keep="first").sort_values("score", kind="stable")
    height = max(FIGSIZE[1], 0.16 * len(shown) + 1.0)  # ~0.16 in per outlet label
    fig = Figure(figsize=(FIGSIZE[0], height), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    colours = {"left": "tab:blue", "center": "tab:gray", "right": "tab:red", None: "black"}
    for reference, group in shown.groupby(shown["reference_leaning"].fillna("unrated"), sort=True):
        y = [list(shown["outlet"]).index(o) for o in group["outlet"]]
        errors = [group["score"] - group["score_low"], group["score_high"] - group["score"]]
        ax.errorbar(group["score"], y, xerr=np.clip(errors, 0, None), fmt="o", ms=3, capsize=2, lw=0.8,
                    color=colours.get(None if reference == "unrated" else reference, "black"), label=reference)
    ax.set_yticks(range(len(shown)), shown["outlet"].tolist(), fontsize=6)
    ax.axvline(0.0, color=GREY, lw=0.8)
    ax.set(xlim=(-1.05, 1.05), title=title)
    ax.legend(fontsize=6, loc="lower right")
    return _to_png(fig)


def similarity_heatmap_png(similarity: pd.DataFrame, order: Sequence[str] | None = None) -> bytes:
    """A square outlet x outlet similarity frame (e.g. `ClusterResult.outlet_similarity`) as a PNG heatmap.

    `order` (e.g. `ClusterResult.outlet_order`, the dendrogram's leaf order) puts rows and columns in that
    order, so outlets that sound alike form blocks on the diagonal; None keeps the frame's order.
    """
    if list(similarity.index) != list(similarity.columns):
        raise ValueError("similarity must be square with the same labels on index and columns")
    if order is not None:
        if sorted(map(str, order)) != sorted(map(str, similarity.index)):
            raise ValueError("order must name each label of similarity exactly once")
        labels = {str(label): label for label in similarity.index}
        similarity = similarity.loc[[labels[str(o)] for o in order], [labels[str(o)] for o in order]]
    values = similarity.to_numpy(dtype=float)
    fig, ax = _figure()
    image = ax.imshow(values, cmap="viridis", vmin=float(np.nanmin(values)) if values.size else 0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="cosine similarity")
    _label_axes(ax, list(similarity.index), list(similarity.columns))
    if len(values) <= MAX_ANNOTATED_CELLS:
        _annotate(ax, image, values, fmt="{:.2f}")
    ax.set_title("Outlet similarity (mean embeddings)")
    return _to_png(fig)


def matrix_heatmap_png(matrix: pd.DataFrame, *, title: str, colorbar_label: str) -> bytes:
    """A labelled square frame (e.g. outlet x outlet story overlap) as a PNG heatmap on a 0..1 scale; NaN cells
    (too few shared stories) stay blank."""
    values = matrix.to_numpy(dtype=float)
    fig, ax = _figure()
    image = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=colorbar_label)
    _label_axes(ax, list(matrix.index), list(matrix.columns))
    if len(values) <= MAX_ANNOTATED_CELLS:
        _annotate(ax, image, np.nan_to_num(values, nan=0.0), fmt="{:.2f}")
    ax.set_title(title)
    return _to_png(fig)


def coverage_bars_png(stories: pd.DataFrame, *, title: str) -> bytes:
    """One horizontal bar per story (columns headline, share_left, share_center, share_right): its outlets'
    shares by leaning, left blue, center grey, right red."""
    fig, ax = _figure()
    labels = [str(h)[:48] for h in stories["headline"]]
    left = np.zeros(len(stories))
    for side in ("left", "center", "right"):
        share = stories[f"share_{side}"].fillna(0.0).to_numpy(dtype=float)
        ax.barh(range(len(stories)), share, left=left, color=FIXED_COLOURS[side], label=side)
        left += share
    ax.set_yticks(range(len(stories)), labels, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the story's rated outlets")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title)
    return _to_png(fig)


def histogram_png(values: Sequence[float], *, title: str, xlabel: str, log_y: bool) -> bytes:
    """A histogram with integer-width bins (e.g. story sizes in articles)."""
    values = np.asarray(values, dtype=float)
    fig, ax = _figure()
    top = int(values.max()) if len(values) else 1
    step = max(1, top // 40)
    ax.hist(values, bins=np.arange(0.5, top + 0.5 + step, step), color="#1f77b4")  # the last edge above the max
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title)
    return _to_png(fig)


def confusion_matrix_png(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> bytes:
    """A confusion matrix (rows: true label, columns: predicted, in `labels` order) as PNG bytes."""
    counts = np.asarray(matrix)
    if counts.dtype.kind not in "iu":
        raise TypeError(f"matrix must hold integer counts; got dtype {counts.dtype}")
    if counts.shape != (len(labels), len(labels)):
        raise ValueError(f"matrix must be {len(labels)} x {len(labels)} to match labels; got shape {counts.shape}")
    fig, ax = _figure()
    image = ax.imshow(counts, cmap="Blues")
    _label_axes(ax, list(labels), list(labels))
    _annotate(ax, image, counts, fmt="{:d}")
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    return _to_png(fig)


def scatter_html(
    points: pd.DataFrame,
    hover_cols: Sequence[str],
    color_by: str,
    *,
    color_options: Sequence[str] = (),
    plotlyjs: str = "inline",
) -> str:
    """An interactive plotly scatter of `points` as a full HTML page; see `scatter_figure` for the columns.

    `plotlyjs="inline"` embeds plotly.js (~4.7 MB) so the page works offline, as this project must;
    `"cdn"` gives a page of a few KB plus the data that loads plotly.js from the internet when opened.
    """
    if plotlyjs not in ("inline", "cdn"):
        raise ValueError(f"plotlyjs must be 'inline' or 'cdn'; got {plotlyjs!r}")
    fig = scatter_figure(points, hover_cols, color_by, color_options=color_options)
    return fig.to_html(full_html=True, include_plotlyjs=True if plotlyjs == "inline" else "cdn")


def scatter_figure(
    points: pd.DataFrame, hover_cols: Sequence[str], color_by: str, *, color_options: Sequence[str] = ()
) -> go.Figure:
    """A plotly scatter of `points` (columns `x`, `y`, `color_by`, `color_options` and `hover_cols`).

    Each colouring is one set of traces, a trace per group (all treated as categorical, so cluster ids get a
    legend rather than a colour bar); `color_by`'s set shows first, and with `color_options` a dropdown
    ("colour by ...") switches which set is visible. One trace per group keeps the legend clickable, at the
    cost of the points being written once per colouring. Hover shows `hover_cols`, strings cut to 200
    characters and HTML-escaped (plotly renders tags in hover text).
    """
    import plotly.graph_objects as go

    options = list(dict.fromkeys([color_by, *color_options]))
    _check_columns(points, ["x", "y", *options, *hover_cols], where="scatter_html")
    hover = _hover_text(points, hover_cols)
    trace = go.Scattergl if len(points) > WEBGL_MIN_POINTS else go.Scatter
    fig = go.Figure()
    spans: list[tuple[str, int, int]] = []  # (option, first trace, one past its last trace)
    for option in options:
        start = len(fig.data)
        groups = points[option].astype(str).to_numpy()
        names = sorted(set(groups.tolist()), key=_natural_key)
        for name, colour in zip(names, _palette(names)):
            mask = groups == name
            fig.add_trace(trace(
                x=points["x"].to_numpy()[mask], y=points["y"].to_numpy()[mask], mode="markers", name=name,
                legendgroup=option, legendgrouptitle_text=option, marker={"size": 5, "color": colour},
                hovertext=hover[mask], hoverinfo="text", visible=option == color_by,
            ))
        spans.append((option, start, len(fig.data)))
    fig.update_layout(title=f"Articles by {color_by}", xaxis={"visible": False}, yaxis={"visible": False},
                      template="plotly_white")
    if len(options) > 1:
        buttons = [
            {"label": f"colour by {option}", "method": "update",
             "args": [{"visible": [start <= i < stop for i in range(len(fig.data))]},
                      {"title.text": f"Articles by {option}"}]}
            for option, start, stop in spans
        ]
        fig.update_layout(updatemenus=[{"buttons": buttons, "active": 0, "x": 0.0, "xanchor": "left", "y": 1.1,
                                        "yanchor": "bottom", "direction": "down"}])
    return fig


def png_markdown(png: bytes, alt: str) -> str:
    """A Markdown image with the PNG inlined as a base64 data URI, for Dagster's `MetadataValue.md`."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("png_markdown expects PNG bytes (they must start with the PNG signature)")
    safe_alt = alt.replace("[", "(").replace("]", ")")
    return f"![{safe_alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    return fig, fig.subplots()


def _to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _label_axes(ax: Axes, rows: list[str], cols: list[str]) -> None:
    ax.set_xticks(range(len(cols)), [str(c) for c in cols], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=7)


def _annotate(ax: Axes, image: AxesImage, values: np.ndarray, *, fmt: str) -> None:
    # Text colour by the cell's luminance, so numbers stay readable on both ends of any colour map.
    for (i, j), value in np.ndenumerate(values):
        red, green, blue, _ = image.cmap(image.norm(value))
        colour = "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"
        ax.text(j, i, fmt.format(value.item()), ha="center", va="center", fontsize=7, color=colour)


def _natural_key(group: str) -> tuple[int, float, str]:
    # Cluster ids sort numerically ("2" before "10"); outlet names alphabetically.
    try:
        return (0, float(group), "")
    except ValueError:
        return (1, 0.0, group)


def _hover_text(points: pd.DataFrame, hover_cols: Sequence[str]) -> np.ndarray:
    text = pd.Series("", index=points.index, dtype=object)
    for i, col in enumerate(hover_cols):
        text = text + ("<br>" if i else "") + f"{col}: " + points[col].map(lambda v: html.escape(str(_shorten(v))))
    return text.to_numpy(dtype=object)


def _palette(names: list[str]) -> list[str]:
    # Plotly's 10 colours while they suffice, then its 26-colour Alphabet set, cycled beyond that.
    import plotly.express as px

    colours = px.colors.qualitative.Plotly if len(names) <= 10 else px.colors.qualitative.Alphabet
    free = iter(colours * (len(names) // len(colours) + 1))
    return [FIXED_COLOURS[name] if name in FIXED_COLOURS else next(free) for name in names]


def _shorten(value: object) -> object:
    if isinstance(value, str) and len(value) > MAX_HOVER_CHARS:
        return value[: MAX_HOVER_CHARS - 1] + "…"
    return value


def _check_columns(frame: pd.DataFrame, columns: list[str], *, where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}; got {list(frame.columns)}")


def trends_png(table: pd.DataFrame, *, top_k: int) -> bytes:
    """Net sentiment per week of the `top_k` entities and topics with the most volume in a `trends.WEEKLY_COLUMNS`
    table (all outlets pooled), one panel per kind; marker area grows with the week's volume."""
    from opensentiment_pipeline.core.analysis import trends

    kinds = [k for k in ("entity", "topic") if len(table) and (table["kind"] == k).any()]
    fig = Figure(figsize=(9, 3.6 * max(len(kinds), 1)))
    axes = fig.subplots(max(len(kinds), 1), 1, squeeze=False)[:, 0]
    if not kinds:
        axes[0].text(0.5, 0.5, "no entity mentions or topics yet", ha="center", va="center")
        axes[0].set_axis_off()
        return _to_png(fig)
    for ax, kind in zip(axes, kinds):
        keys = trends.top_keys(table, kind=kind, k=top_k)
        pooled = trends.pooled_weekly(table, keys, kind=kind)
        weeks = sorted(pooled["week"].unique())
        for key in keys:
            part = pooled[pooled["key"].astype(str) == key].set_index("week").reindex(weeks)
            x = np.arange(len(weeks))
            (line,) = ax.plot(x, part["net_sentiment"].to_numpy(dtype=float), label=f"{kind} {key}")
            ax.scatter(x, part["net_sentiment"].to_numpy(dtype=float), color=line.get_color(),
                       s=10 + 90 * part["volume"].fillna(0).to_numpy(dtype=float) / max(pooled["volume"].max(), 1))
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xticks(np.arange(len(weeks)), weeks, rotation=45, ha="right", fontsize=7)
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel("net sentiment")
        plural = {"entity": "entities", "topic": "topics (map clusters)"}[kind]
        ax.set_title(f"Top {len(keys)} {plural} by volume: net sentiment per week (marker size: volume)")
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _to_png(fig)
