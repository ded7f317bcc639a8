"""Exact-output tests for exact and near duplicate removal."""

from __future__ import annotations

import pytest

from opensentiment_pipeline.core.ingest.dedup import deduplicate
from opensentiment_pipeline_tests.core.test_articles import _table

# 41 words, 39 word 3-shingles. Changing the last word changes 1 shingle (Jaccard 38/40 = 0.95); changing
# two words in the middle changes 6 (Jaccard 33/45 = 0.73).
LONG = (
    "The city council voted on Tuesday to expand the bus network into the northern suburbs after months of "
    "debate about costs and routes and the mayor said the first new lines would open in the spring with "
    "more to follow later"
)


def test_deduplicate_drops_exact_copies_but_keeps_other_targets_and_tasks():
    table = _table(
        ["Alice praised Bob.", "ALICE praised bob!", "Alice praised Bob.", "Alice praised Bob.", "Prices fell."],
        targets=["Bob", "Bob", "Alice", "Bob", None],
        tasks=["sentiment", "sentiment", "sentiment", "bias", "sentiment"],
    )
    kept, n_exact, n_near = deduplicate(table, near_threshold=0.8, seed=0)
    assert kept["article_id"].tolist() == ["x:0", "x:2", "x:3", "x:4"]
    assert (n_exact, n_near) == (1, 0)


def test_deduplicate_drops_near_copies_and_keeps_the_first():
    edited = LONG.replace("later", "soon")
    table = _table(["Something else entirely.", LONG, edited, LONG.replace("bus", "tram").replace("spring", "autumn")])
    kept, n_exact, n_near = deduplicate(table, near_threshold=0.8, seed=0)
    assert kept["article_id"].tolist() == ["x:0", "x:1", "x:3"]
    assert (n_exact, n_near) == (0, 1)
    assert table["article_id"].tolist() == ["x:0", "x:1", "x:2", "x:3"]  # input untouched


def test_deduplicate_threshold_one_keeps_near_copies():
    kept, _, n_near = deduplicate(_table([LONG, LONG.replace("later", "soon")]), near_threshold=1.0, seed=0)
    assert (len(kept), n_near) == (2, 0)


def test_deduplicate_rejects_bad_threshold():
    with pytest.raises(ValueError, match=r"near_threshold must be in \(0, 1\]; got 0"):
        deduplicate(_table(["a"]), near_threshold=0, seed=0)


def test_protected_rows_are_never_dropped_and_later_copies_of_them_are():
    import numpy as np

    edited = LONG.replace("later", "soon")
    table = _table([LONG, edited, LONG, edited, "Prices fell."])
    protected = np.array([True, True, False, False, False])  # e.g. a fixed test split, put first
    kept, n_exact, n_near = deduplicate(table, near_threshold=0.8, seed=0, protected=protected)
    assert kept["article_id"].tolist() == ["x:0", "x:1", "x:4"]  # both test rows stay, though near-duplicates
    assert (n_exact, n_near) == (2, 0)
