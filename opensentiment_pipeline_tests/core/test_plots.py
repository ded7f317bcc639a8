"""Plot tests: valid, small PNGs and self-contained HTML from hand-built frames."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline.core.plots import (
    GREY,
    PNG_SIGNATURE,
    confusion_matrix_png,
    leaning_map_png,
    png_markdown,
    scatter_figure,
    scatter_html,
    scatter_png,
    similarity_heatmap_png,
)


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "article_id": [f"id{i}" for i in range(30)],
            "outlet": np.repeat(["alpha", "beta", "gamma"], 10),
            "x": rng.normal(size=30),
            "y": rng.normal(size=30),
            "cluster": np.tile([-1, 0, 1], 10),
            "text": ["word " * 100] * 30,  # 500 characters: hover text gets cut
            "sentiment": np.resize(["negative", "positive", "neutral", "positive", "positive"], 30),
            "title": ["a <b>bold</b> & plain title"] * 30,
        }
    )


def png_size(png: bytes) -> tuple[int, int]:
    # Width and height are the first two big-endian uint32s of the IHDR chunk, right after the signature.
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _rgb(png: bytes) -> np.ndarray:
    import io

    from matplotlib.image import imread

    return imread(io.BytesIO(png))[..., :3]  # (height, width, 3) floats in 0..1


def _pixels_near(png: bytes, colour: str, tolerance: float = 0.08) -> np.ndarray:
    """Boolean (height, width) mask of the pixels within `tolerance` of a matplotlib colour."""
    from matplotlib.colors import to_rgb

    return (np.abs(_rgb(png) - np.array(to_rgb(colour))) < tolerance).all(axis=-1)


@pytest.mark.parametrize("color_by, groups", [("cluster", ["0", "1"]), ("outlet", ["alpha", "beta", "gamma"])])
def test_scatter_png_draws_each_group_in_its_own_colour(points, color_by, groups):
    png = scatter_png(points, color_by=color_by)
    assert png.startswith(PNG_SIGNATURE)
    assert png_size(png) == (480, 320)
    # one palette colour per group (C0, C1, ...), in the points and their legend entries
    assert all(_pixels_near(png, f"C{i}").sum() > 20 for i in range(len(groups)))
    assert _pixels_near(png, f"C{len(groups)}").sum() == 0  # no colour for a group that does not exist
    if color_by == "cluster":  # HDBSCAN noise (-1) in grey: well above the grey of anti-aliased edges
        by_outlet = scatter_png(points, color_by="outlet")
        assert _pixels_near(png, GREY, 0.03).sum() > 2 * _pixels_near(by_outlet, GREY, 0.03).sum()


def _blue_and_red_pixels(png: bytes) -> tuple[int, int]:
    rgb = _rgb(png)
    red, blue = rgb[..., 0], rgb[..., 2]
    return int(((blue - red) > 0.3).sum()), int(((red - blue) > 0.3).sum())


def test_leaning_map_colours_left_outlets_blue_and_right_ones_red(points):
    left = points.assign(leaning_score=np.where(points["outlet"] == "gamma", np.nan, -0.9))
    png = leaning_map_png(left)
    assert png.startswith(PNG_SIGNATURE) and png_size(png) == (480, 320)
    blue, red = _blue_and_red_pixels(png)
    # The colour bar holds both colours; the points add blue only.
    flipped_blue, flipped_red = _blue_and_red_pixels(leaning_map_png(left.assign(leaning_score=-left["leaning_score"])))
    assert blue > flipped_blue and red < flipped_red
    with pytest.raises(ValueError, match=r"leaning_map_png: missing columns \['leaning_score'\]"):
        leaning_map_png(points)


def test_similarity_heatmap_png_shows_high_similarity_yellow_and_low_purple():
    sim = pd.DataFrame([[1.0, 0.1], [0.1, 1.0]], index=["a", "b"], columns=["a", "b"])
    png = similarity_heatmap_png(sim)
    assert png.startswith(PNG_SIGNATURE)
    yellow, purple = _pixels_near(png, "#fde725", 0.1), _pixels_near(png, "#440154", 0.1)  # viridis' two ends
    assert yellow.sum() > 500 and purple.sum() > 500  # the diagonal cells and the off-diagonal ones


SIM3 = pd.DataFrame(
    [[1.0, 0.1, 0.9], [0.1, 1.0, 0.2], [0.9, 0.2, 1.0]], index=["a", "b", "c"], columns=["a", "b", "c"]
)


def test_similarity_heatmap_draws_rows_and_columns_in_the_given_order():
    ordered = similarity_heatmap_png(SIM3, order=["a", "c", "b"])
    assert ordered == similarity_heatmap_png(SIM3.loc[["a", "c", "b"], ["a", "c", "b"]])
    assert ordered != similarity_heatmap_png(SIM3)


def test_similarity_heatmap_rejects_an_order_that_is_not_a_permutation():
    with pytest.raises(ValueError, match="order must name each label of similarity exactly once"):
        similarity_heatmap_png(SIM3, order=["a", "b", "b"])


def test_similarity_heatmap_rejects_non_square_labels():
    sim = pd.DataFrame([[1.0, 0.8], [0.8, 1.0]], index=["a", "b"], columns=["a", "c"])
    with pytest.raises(ValueError, match="same labels on index and columns"):
        similarity_heatmap_png(sim)


def _dark_blue_centre(png: bytes) -> tuple[float, float]:
    rgb = _rgb(png)
    ys, xs = np.nonzero((rgb[..., 2] > 0.3) & (rgb[..., 0] < 0.15))  # the darkest cells of "Blues"
    return float(xs.mean()), float(ys.mean())


def test_confusion_matrix_png_draws_the_largest_count_darkest_in_its_cell():
    labels = ["negative", "neutral", "positive"]
    top_left = confusion_matrix_png([[9, 1, 0], [1, 1, 1], [0, 1, 1]], labels)
    bottom_right = confusion_matrix_png([[1, 1, 0], [1, 1, 1], [0, 1, 9]], labels)
    assert top_left.startswith(PNG_SIGNATURE)
    (x0, y0), (x1, y1) = _dark_blue_centre(top_left), _dark_blue_centre(bottom_right)
    assert x1 - x0 > 60 and y1 - y0 > 60  # two cells apart (a cell is ~80 px) right and down


def test_confusion_matrix_png_checks_shape():
    with pytest.raises(ValueError, match=r"matrix must be 3 x 3 to match labels; got shape \(2, 2\)"):
        confusion_matrix_png([[1, 0], [0, 1]], ["negative", "neutral", "positive"])


def test_scatter_html_is_self_contained_and_cuts_long_hover_text(points):
    html = scatter_html(points, hover_cols=["article_id", "outlet", "text"], color_by="cluster")
    assert "<html>" in html[:100] and html.rstrip().endswith("</html>")
    assert 'src="https://cdn.plot.ly' not in html  # plotly.js is inlined, so the page works offline
    # 200 characters are 40 "word "s; plotly writes the ellipsis JSON-escaped.
    assert "word " * 40 not in html and "word " * 39 + "word\\u2026" in html


def test_scatter_html_cdn_is_small(points):
    html = scatter_html(points, hover_cols=["outlet"], color_by="outlet", plotlyjs="cdn")
    assert 'src="https://cdn.plot.ly' in html and len(html) < 100_000


def test_png_markdown_inlines_the_png():
    png = confusion_matrix_png([[1, 0], [0, 1]], ["a", "b"])
    markdown = png_markdown(png, alt="confusion [test]")
    assert markdown.startswith("![confusion (test)](data:image/png;base64,")
    assert base64.b64decode(markdown.split(",", 1)[1].rstrip(")")) == png


def test_png_markdown_rejects_non_png():
    with pytest.raises(ValueError, match="must start with the PNG signature"):
        png_markdown(b"GIF89a", alt="x")


def test_scatter_figure_switches_between_three_colourings(points):
    fig = scatter_figure(points, ["title", "outlet", "sentiment", "cluster"], "outlet",
                         color_options=["sentiment", "cluster"])
    groups = [trace.legendgroup for trace in fig.data]
    assert groups == ["outlet"] * 3 + ["sentiment"] * 3 + ["cluster"] * 3
    assert [trace.name for trace in fig.data] == ["alpha", "beta", "gamma", "negative", "neutral", "positive",
                                                   "-1", "0", "1"]
    for option in ("outlet", "sentiment", "cluster"):  # each colouring draws every point exactly once
        assert sum(len(trace.x) for trace in fig.data if trace.legendgroup == option) == len(points)
    assert [trace.visible for trace in fig.data] == [True] * 3 + [False] * 6
    (menu,) = fig.layout.updatemenus
    assert [button.label for button in menu.buttons] == ["colour by outlet", "colour by sentiment", "colour by cluster"]
    for button, option in zip(menu.buttons, ("outlet", "sentiment", "cluster")):
        assert button.args[0]["visible"] == [group == option for group in groups]
        assert button.args[1] == {"title.text": f"Articles by {option}"}
    negative = fig.data[groups.index("sentiment")]
    assert negative.marker.color == "#d62728" and fig.data[groups.index("cluster")].marker.color == "#bbbbbb"


def test_scatter_figure_hover_shows_escaped_columns(points):
    fig = scatter_figure(points, ["title", "outlet", "sentiment", "cluster"], "cluster")
    first = fig.data[0]  # cluster -1: rows 0, 3, 6, ...
    assert first.hovertext[1] == (
        "title: a &lt;b&gt;bold&lt;/b&gt; &amp; plain title<br>outlet: alpha<br>sentiment: positive<br>cluster: -1"
    )
    assert not fig.layout.updatemenus  # one colouring needs no dropdown


def test_scatter_html_offers_the_three_colourings(points):
    html = scatter_html(points, hover_cols=["title", "outlet", "sentiment", "cluster"], color_by="outlet",
                        color_options=["sentiment", "cluster"])
    assert 'src="https://cdn.plot.ly' not in html
    for option in ("outlet", "sentiment", "cluster"):
        assert f'"label":"colour by {option}"' in html
