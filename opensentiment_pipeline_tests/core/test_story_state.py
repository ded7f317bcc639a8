"""Folding articles into the story state day by day gives the table one fold of every day gives, reading no
earlier day: the state keeps the open stories' members, the reference and the outlets' rating counts."""

import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline.core.analysis import story_state

FOLD = {"axis_labels": None, "threshold": 0.6, "window_days": 2, "decay_per_day": 0.05, "blindspot_share": 0.8,
        "blindspot_min_outlets": 2, "n_bootstrap": 40, "top_k_words": 3, "prior_strength": 50.0, "min_z": 0.0,
        "seed": 7}
WORDS = ["budget", "storm", "fire", "election", "harbour", "strike", "vaccine", "bridge"]


def archive(n_days: int = 10, per_day: int = 12, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Articles about 8 recurring events, each event's vectors around its own direction; outlets' ratings vary
    from day to day, so the majority leaning of an outlet changes as days come in."""
    rng = np.random.default_rng(seed)
    rows, vectors = [], []
    for day in range(n_days):
        for i in range(per_day):
            event = int(rng.integers(0, 8))
            outlet = f"outlet{int(rng.integers(0, 5))}"
            rows.append({"article_id": f"d{day}-{i}", "outlet": outlet,
                         "published_at": pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(days=day, hours=i),
                         "title": f"{WORDS[event]} news {i}", "text": f"The {WORDS[event]} report on day {day}.",
                         "leaning": rng.choice(["left", "center", "right", None]),
                         "sentiment": float(rng.choice([-1.0, 0.0, 1.0])), "day": day})
            vector = np.eye(16, dtype=np.float32)[event] + rng.normal(0, 0.15, 16).astype(np.float32)
            vectors.append(vector / np.linalg.norm(vector))
    return pd.DataFrame(rows), np.stack(vectors)


def fresh(articles: pd.DataFrame, vectors: np.ndarray) -> story_state.StoryFolder:
    return story_state.start(articles, vectors, encoder={"model_version": "v1", "text_window": "w"}, settings={},
                             reference_articles=30, center_vectors=True)


def test_day_by_day_equals_one_fold_and_keeps_only_open_members():
    articles, vectors = archive()
    first_day = (articles["day"] == 0).to_numpy()
    start = fresh(articles[first_day], vectors[first_day])  # the reference of the first night
    once, _ = story_state.fold_articles(start, articles, vectors, **FOLD)
    nightly = start
    for day in range(10):
        pick = (articles["day"] == day).to_numpy()
        nightly, _ = story_state.fold_articles(nightly, articles[pick], vectors[pick], **FOLD)
    pd.testing.assert_frame_equal(nightly.table, once.table, check_exact=True)
    pd.testing.assert_frame_equal(nightly.state.stories, once.state.stories, check_exact=True)
    np.testing.assert_array_equal(nightly.state.centroids, once.state.centroids)
    assert nightly.leanings == once.leanings and nightly.ratings.equals(once.ratings)
    assert len(once.table["story_id"].unique()) > 8  # events recur: closed stories reopen as new ones
    open_ids = set(nightly.state.stories["story_id"])
    assert set(nightly.members["story_id"]) == open_ids and len(nightly.members) == len(nightly.member_vectors)
    assert len(nightly.members) < len(articles)


def test_a_fold_does_not_assign_an_article_twice_and_counts_undated_ones():
    articles, vectors = archive(n_days=2)
    folder, _ = story_state.fold_articles(fresh(articles, vectors), articles, vectors, **FOLD)
    undated = articles.iloc[:1].assign(article_id="no-date", published_at=pd.NaT)
    again, update = story_state.fold_articles(folder, pd.concat([articles.iloc[:3], undated]),
                                              np.concatenate([vectors[:3], vectors[:1]]), **FOLD)
    assert len(update.assignments) == 0 and again.undated == 1
    pd.testing.assert_frame_equal(again.table, folder.table)


def test_the_folder_round_trips(tmp_path):
    articles, vectors = archive(n_days=3)
    folder, _ = story_state.fold_articles(fresh(articles, vectors), articles, vectors, **FOLD)
    story_state.save(tmp_path, folder)
    loaded = story_state.load(tmp_path)
    pd.testing.assert_frame_equal(loaded.table, folder.table, check_exact=True)
    pd.testing.assert_frame_equal(loaded.members, folder.members)
    np.testing.assert_array_equal(loaded.member_vectors, folder.member_vectors)
    np.testing.assert_array_equal(loaded.reference.words, folder.reference.words)
    assert (loaded.leanings, loaded.encoder, loaded.undated) == (folder.leanings, folder.encoder, folder.undated)
    nxt = archive(n_days=4)
    pick = (nxt[0]["day"] == 3).to_numpy()
    a, _ = story_state.fold_articles(loaded, nxt[0][pick], nxt[1][pick], **FOLD)
    b, _ = story_state.fold_articles(folder, nxt[0][pick], nxt[1][pick], **FOLD)
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True)


def test_the_reference_comes_from_the_first_articles_in_day_order():
    articles, vectors = archive(n_days=2)
    folder = fresh(articles.iloc[::-1], vectors[::-1])
    np.testing.assert_allclose(folder.center, vectors[:30].astype(np.float64).mean(axis=0), rtol=1e-6)
    assert "budget" in set(folder.reference.words) or "storm" in set(folder.reference.words)
    with pytest.raises(ValueError, match=r"articles lack columns \['leaning'\]"):
        story_state.fold_articles(folder, articles.drop(columns=["leaning"]), vectors, **FOLD)
