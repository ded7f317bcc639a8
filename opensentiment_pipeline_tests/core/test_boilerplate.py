"""Boilerplate stripping: bylines, datelines, recurring footers and the outlet's own name go; prose stays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline.core.analysis import leaning
from opensentiment_pipeline.core.ingest import boilerplate

STRIP = dict(min_share=0.5, min_count=2)


def test_strips_bylines_datelines_footers_and_the_outlets_own_name():
    texts = [
        "By Jane Doe\nWASHINGTON (Reuters) - The Senate passed the bill on Tuesday.\nIt now goes to the House.\n"
        "Copyright 2019 Wire Service, LLC. Click here for reprint permission.",
        "By JOHN ROE, Associated Press\nNEW YORK — Stocks fell as the Wire Service reported weak jobs data.\n"
        "Sign up for our daily newsletter",
        "Story Continued Below\nA court ruled against the governor.\nStory Continued Below",
    ]
    stripped = boilerplate.strip_boilerplate(texts, ["wire service", "wire service", "paper"], **STRIP)
    assert stripped == [
        "The Senate passed the bill on Tuesday.\nIt now goes to the House.",
        "Stocks fell as reported weak jobs data.",
        "Story Continued Below\nA court ruled against the governor.\nStory Continued Below",  # one article: no rule
    ]


def test_a_line_recurring_across_one_outlets_articles_is_removed_only_there():
    footer = "Get the Monitor stories you care about delivered to your inbox."
    texts = [f"Story {i} about farm subsidies and rain.\n{footer}" for i in range(4)] + [f"Other {footer}"]
    stripped = boilerplate.strip_boilerplate(texts, ["monitor"] * 4 + ["elsewhere"], min_share=0.5, min_count=3)
    assert stripped[:4] == [f"Story {i} about farm subsidies and rain." for i in range(4)]
    assert stripped[4] == f"Other {footer}"


def test_short_recurring_lines_are_matched_on_their_first_words():
    prose = ["The vote was close in Ohio.", "Turnout rose among young voters.", "Polls closed at eight."]
    texts = [f"Watch the full interview with {name} on our channel\n{p}" for name, p in zip(["Ann", "Bo", "Cy"], prose)]
    stripped = boilerplate.strip_boilerplate(texts, ["radio"] * 3, min_share=0.5, min_count=3)
    assert stripped == prose


def test_an_article_that_is_all_boilerplate_keeps_its_first_paragraph():
    assert boilerplate.strip_boilerplate(["By Jane Doe\nAdvertisement"], ["x"], **STRIP) == ["By Jane Doe"]


@pytest.mark.parametrize(("kwargs", "match"), [(dict(min_share=0.0, min_count=2), r"min_share must be in \(0, 1\]"),
                                               (dict(min_share=0.5, min_count=1), r"min_count >= 2; got 0.5 and 1")])
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        boilerplate.strip_boilerplate(["a"], ["x"], **kwargs)


def test_a_probe_cannot_win_by_recognising_sister_outlets_boilerplate():
    # Prose is random and carries no leaning; each leaning's outlets share a house footer and byline style
    # (as "Fox News" and "Fox Online News" do in ABP), so an outlet-disjoint probe can learn the footer.
    rng = np.random.default_rng(0)
    vocabulary = ["".join(rng.choice(list("abcdefghij"), 5)) for _ in range(300)]  # no digits: they are folded
    rows = []
    for side, footer in (("left", "Copyright Progressive Group. All rights reserved."),
                         ("right", "Copyright Liberty Holdings. Click here for reprint permission.")):
        for n in range(4):
            for i in range(15):
                prose = "\n".join(" ".join(rng.choice(vocabulary, 12)) for _ in range(3))
                rows.append({"outlet": f"{side} {n}", "leaning": side,
                             "text": f"By {side.title()} Staff Writer\n{prose}\n{footer}"})
    articles = pd.DataFrame(rows)
    settings = dict(reference=None, n_folds=4, regularization=10.0, min_articles=5)
    raw = leaning.tfidf_reference(articles["text"].tolist(), articles, **settings)
    stripped_texts = boilerplate.strip_boilerplate(articles["text"].tolist(), articles["outlet"].tolist(),
                                                   min_share=0.1, min_count=3)
    stripped = leaning.tfidf_reference(stripped_texts, articles, **settings)
    assert raw["tfidf_outlet_cv_macro_f1"] == 1.0
    assert not any("Copyright" in t or "Staff Writer" in t for t in stripped_texts)
    assert stripped["tfidf_outlet_cv_macro_f1"] < 0.75
