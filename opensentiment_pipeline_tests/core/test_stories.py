"""Story assignment on hand-built unit vectors: exact stories, undated articles, nights versus a rebuild."""

import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline.core.analysis import stories

SETTINGS = {"threshold": 0.8, "window_days": 4, "decay_per_day": 0.0}


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def frame(rows: list[tuple[str, str | None]]) -> pd.DataFrame:
    return pd.DataFrame({"article_id": [r[0] for r in rows],
                         "published_at": pd.to_datetime([r[1] for r in rows], utc=True)})


def groups(update: stories.StoryUpdate) -> list[list[str]]:
    """The stories as sorted lists of article ids, sorted: independent of the ids' hash values."""
    members = update.assignments.groupby("story_id")["article_id"].apply(sorted)
    return sorted(members.tolist())


def test_same_topic_a_month_apart_is_two_stories():
    # The same direction (one topic: a Senate vote), but 31 days apart: the window keeps them apart.
    articles = frame([("vote-1a", "2026-01-05T10:00Z"), ("vote-1b", "2026-01-06T08:00Z"),
                      ("vote-2a", "2026-02-05T10:00Z"), ("vote-2b", "2026-02-06T09:00Z")])
    vectors = np.stack([unit(1, 0.1, 0), unit(1, 0.12, 0), unit(1, 0.1, 0.02), unit(1, 0.11, 0)])
    update = stories.assign_stories(articles, vectors, stories.StoryState.empty(3), **SETTINGS)
    assert groups(update) == [["vote-1a", "vote-1b"], ["vote-2a", "vote-2b"]]


def test_one_event_by_three_outlets_over_three_days_is_one_story():
    articles = frame([("fox", "2026-03-01T12:00Z"), ("nyt", "2026-03-02T07:00Z"), ("hpo", "2026-03-03T21:00Z"),
                      ("other", "2026-03-02T09:00Z")])
    vectors = np.stack([unit(0, 1, 0.2), unit(0, 1, 0.3), unit(0, 1, 0.1), unit(1, 0, 0)])
    update = stories.assign_stories(articles, vectors, stories.StoryState.empty(3), **SETTINGS)
    assert groups(update) == [["fox", "hpo", "nyt"], ["other"]]
    story = update.assignments.set_index("article_id")["story_id"]
    assert story["fox"] == stories.story_id_of("fox")  # named after the article that opened it
    open_state = update.state.stories.set_index("story_id")
    assert open_state.loc[story["fox"], "n_articles"] == 3
    assert str(open_state.loc[story["fox"], "last_day"].date()) == "2026-03-03"


def test_undated_article_is_left_out_and_counted():
    articles = frame([("dated", "2026-03-01T12:00Z"), ("undated", None)])
    update = stories.assign_stories(articles, np.stack([unit(1, 0), unit(1, 0)]), stories.StoryState.empty(2),
                                    **SETTINGS)
    assert update.undated == 1
    assert update.assignments["article_id"].tolist() == ["dated"]


def test_time_decay_keeps_a_late_similar_article_out():
    articles = frame([("a", "2026-03-01T12:00Z"), ("b", "2026-03-04T12:00Z")])
    vectors = np.stack([unit(1, 0), unit(1, 0.3)])  # cosine 0.958
    joined = stories.assign_stories(articles, vectors, stories.StoryState.empty(2), threshold=0.8, window_days=4,
                                    decay_per_day=0.0)
    split = stories.assign_stories(articles, vectors, stories.StoryState.empty(2), threshold=0.8, window_days=4,
                                   decay_per_day=0.1)  # 0.958 - 3 x 0.1 < 0.8
    assert groups(joined) == [["a", "b"]]
    assert groups(split) == [["a"], ["b"]]


def test_two_nights_equal_one_rebuild_and_closed_stories_leave_the_state():
    articles = frame([("a1", "2026-03-01T08:00Z"), ("a2", "2026-03-01T09:00Z"), ("b1", "2026-03-01T10:00Z"),
                      ("a3", "2026-03-02T08:00Z"), ("c1", "2026-03-09T08:00Z")])
    vectors = np.stack([unit(1, 0, 0), unit(1, 0.1, 0), unit(0, 1, 0), unit(1, 0, 0.1), unit(0, 0, 1)])
    first_night = articles["article_id"].isin(["a1", "a2", "b1"]).to_numpy()
    night1 = stories.assign_stories(articles[first_night], vectors[first_night], stories.StoryState.empty(3),
                                    **SETTINGS)
    night2 = stories.assign_stories(articles[~first_night], vectors[~first_night], night1.state, **SETTINGS)
    rebuild = stories.assign_stories(articles, vectors, stories.StoryState.empty(3), **SETTINGS)
    nightly = pd.concat([night1.assignments, night2.assignments]).set_index("article_id")["story_id"]
    assert nightly.sort_index().to_dict() == rebuild.assignments.set_index("article_id")["story_id"].sort_index().to_dict()
    assert nightly["a3"] == nightly["a1"] == stories.story_id_of("a1")
    # c1 on 03-09 is more than 4 days after the a- and b-stories' last days: only its own story stays open.
    assert night2.state.stories["story_id"].tolist() == [stories.story_id_of("c1")]
    assert sorted(night2.closed) == sorted([stories.story_id_of("a1"), stories.story_id_of("b1")])


def test_state_round_trips_through_its_folder(tmp_path):
    articles = frame([("a1", "2026-03-01T08:00Z"), ("b1", "2026-03-01T10:00Z")])
    update = stories.assign_stories(articles, np.stack([unit(1, 0), unit(0, 1)]), stories.StoryState.empty(2),
                                    **SETTINGS)
    table = pd.DataFrame({"story_id": ["x"], "outlet": ["o"]})
    stories.save_state(tmp_path, update.state, update.assignments, table)
    state, assignments, loaded = stories.load_state(tmp_path, dim=2)
    assert state.stories.equals(update.state.stories)
    np.testing.assert_array_equal(state.centroids, update.state.centroids)
    assert assignments["article_id"].tolist() == ["a1", "b1"]
    assert loaded.equals(table)


def test_agglomerative_reference_respects_the_window():
    articles = frame([("a", "2026-01-01T10:00Z"), ("b", "2026-01-02T10:00Z"), ("c", "2026-02-01T10:00Z")])
    vectors = np.stack([unit(1, 0), unit(1, 0.05), unit(1, 0.02)])
    labels = stories.agglomerative_stories(articles, vectors, threshold=0.8, window_days=4, center=None)
    assert labels["a"] == labels["b"] == stories.story_id_of("a")
    assert labels["c"] == stories.story_id_of("c")


def test_state_of_another_dimension_is_refused():
    articles = frame([("a", "2026-01-01T10:00Z")])
    with pytest.raises(ValueError, match=r"rebuild the stories \(rebuild: true\)"):
        stories.assign_stories(articles, np.stack([unit(1, 0, 0)]), stories.StoryState.empty(2), **SETTINGS)


def test_centring_keeps_a_shared_direction_from_merging_distinct_events():
    # Three events on one day whose vectors share a strong common direction (dimension 0), as sentence-encoder
    # vectors do: compared as they are, they are one story; minus their mean, three.
    rng = np.random.default_rng(0)
    events = np.repeat(np.arange(3), 4)
    vectors = np.zeros((12, 6), dtype=np.float32)
    vectors[:, 0] = 3.0
    vectors[np.arange(12), 1 + events] = 1.0
    vectors += rng.normal(0, 0.05, vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    articles = frame([(f"e{e}-{i}", "2026-03-01T10:00Z") for i, e in enumerate(events)])
    plain = stories.assign_stories(articles, vectors, stories.StoryState.empty(6), **SETTINGS)
    centred = stories.assign_stories(articles, vectors, stories.StoryState.empty(6, vectors.mean(axis=0)), **SETTINGS)
    assert len(groups(plain)) == 1
    assert groups(centred) == [sorted(f"e{e}-{i}" for i in range(12) if events[i] == e) for e in range(3)]
    np.testing.assert_array_equal(centred.state.center, vectors.mean(axis=0))
