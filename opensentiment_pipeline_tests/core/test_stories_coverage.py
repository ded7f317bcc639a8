"""Story summaries: coverage by leaning, blindspots, per-outlet sentiment, log-odds words and outlet agreement."""

import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline.core.analysis import story_coverage, story_words

REFERENCE = story_words.reference_counts(["The senate met on Friday about the budget.", "Families and funding news.",
                                          "Congress voted; the border and the wall were discussed."])
SUMMARY = {"leaning_source": "source ratings", "blindspot_share": 0.8, "blindspot_min_outlets": 2,
           "n_bootstrap": 200, "top_k_words": 3, "prior_strength": 10.0, "min_z": 0.0, "seed": 0,
           "reference": REFERENCE}


def members() -> pd.DataFrame:
    rows = [  # story s1: left + right + center; story s2: two right outlets only
        ("a1", "s1", "left-post", "left", "Tax cuts for the rich pass", "Tax cuts for the rich pass the senate.", -1.0),
        ("a2", "s1", "right-daily", "right", "Tax relief passes", "Senate passes tax relief for families.", 1.0),
        ("a3", "s1", "right-daily", "right", "Families cheer tax relief", "Tax relief wins the senate vote.", 1.0),
        ("a4", "s1", "wire", "center", "Senate passes tax bill", "The senate passed the tax bill on Friday.", 0.0),
        ("b1", "s2", "right-daily", "right", "Border wall funding", "Funding for the border wall was approved.", 0.0),
        ("b2", "s2", "right-weekly", "right", "Wall funding approved", "Congress approved border wall funding.", -1.0),
    ]
    frame = pd.DataFrame(rows, columns=["article_id", "story_id", "outlet", "leaning", "title", "text", "sentiment"])
    return frame.assign(day=pd.Timestamp("2026-03-01"))


def vectors() -> np.ndarray:
    return np.eye(6, dtype=np.float32)[[0, 0, 0, 0, 1, 1]] + np.eye(6, dtype=np.float32) * 0.1


def test_coverage_shares_and_blindspot():
    table = story_coverage.summarise_stories(members(), vectors(), **SUMMARY)
    per_story = table.drop_duplicates("story_id").set_index("story_id")
    assert per_story.loc["s1", ["share_left", "share_center", "share_right"]].tolist() == pytest.approx(
        [1 / 3, 1 / 3, 1 / 3])
    assert per_story.loc["s1", "blindspot"] == ""
    assert per_story.loc["s2", "share_right"] == 1.0
    assert per_story.loc["s2", "blindspot"] == "left"  # only right outlets covered it
    assert per_story.loc["s1", "outlets"] == "left-post, right-daily, wire"
    assert per_story.loc["s1", "n_articles"] == 4 and per_story.loc["s1", "n_outlets"] == 3


def test_outlet_sentiment_interval_and_single_article():
    table = story_coverage.summarise_stories(members(), vectors(), **SUMMARY).set_index(["story_id", "outlet"])
    right = table.loc[("s1", "right-daily")]
    assert (right["sentiment"], right["sentiment_low"], right["sentiment_high"]) == (1.0, 1.0, 1.0)
    left = table.loc[("s1", "left-post")]
    assert (left["sentiment"], left["sentiment_low"], left["sentiment_high"]) == (-1.0, -1.0, -1.0)
    assert table.loc[("s1", "right-daily"), "outlet_articles"] == 2


def test_outlet_words_set_the_tellings_apart():
    table = story_coverage.summarise_stories(members(), vectors(), **SUMMARY).set_index(["story_id", "outlet"])
    assert "relief" in table.loc[("s1", "right-daily"), "outlet_words"].split(", ")
    assert "rich" in table.loc[("s1", "left-post"), "outlet_words"].split(", ")
    assert "relief" not in table.loc[("s1", "left-post"), "outlet_words"]


def test_log_odds_z_signs_and_prior_shrinkage():
    z = story_words.log_odds_z(np.array([5, 0]), np.array([0, 5]), np.array([10, 10]), prior_strength=10.0)
    assert z[0] > 0 > z[1]
    assert z[0] == pytest.approx(-z[1])
    weak = story_words.log_odds_z(np.array([5, 0]), np.array([0, 5]), np.array([10, 10]), prior_strength=1000.0)
    assert abs(weak[0]) < abs(z[0])  # a stronger prior pulls both groups toward the background


def test_outlet_agreement_overlap_and_sentiment_gap():
    table = story_coverage.summarise_stories(members(), vectors(), **SUMMARY)
    agreement = story_coverage.outlet_agreement(table, min_shared=1).set_index(["outlet_a", "outlet_b"])
    pair = agreement.loc[("left-post", "right-daily")]
    assert (pair["stories_a"], pair["stories_b"], pair["shared_stories"]) == (1, 2, 1)
    assert pair["coverage_jaccard"] == 0.5
    assert pair["sentiment_gap"] == 2.0 and pair["sentiment_closeness"] == 0.0
    strict = story_coverage.outlet_agreement(table, min_shared=2).set_index(["outlet_a", "outlet_b"])
    assert np.isnan(strict.loc[("left-post", "right-daily"), "sentiment_gap"])
    matrix = story_coverage.agreement_matrix(agreement.reset_index(), "coverage_jaccard")
    assert matrix.loc["right-daily", "left-post"] == 0.5 and matrix.loc["wire", "wire"] == 1.0


def test_leanings_prefer_source_ratings_and_say_so():
    ratings = story_coverage.rating_counts(pd.Series(["a", "b", "c", "c", "c"]),
                                           pd.Series(["left", None, "right", "left", "right"]))
    axis = pd.Series(["right", "center", "left"], index=["a", "b", "c"])
    assert story_coverage.outlet_leanings(ratings, axis_labels=axis) == (
        {"a": "left", "b": None, "c": "right"}, "source ratings")
    none = story_coverage.rating_counts(pd.Series(["a", "b"]), pd.Series([None, None], dtype=object))
    assert story_coverage.outlet_leanings(none, axis_labels=axis) == (
        {"a": "right", "b": "center"}, "bias axis labels")
    # counts added night by night give the majority of all nights; a tie goes to the first of left, center, right
    tied = story_coverage.add_rating_counts(story_coverage.rating_counts(pd.Series(["d"]), pd.Series(["right"])),
                                            story_coverage.rating_counts(pd.Series(["d"]), pd.Series(["center"])))
    assert story_coverage.outlet_leanings(tied, axis_labels=None) == ({"d": "center"}, "source ratings")


def test_a_story_summary_does_not_depend_on_the_other_stories_or_the_row_order():
    both = story_coverage.summarise_stories(members(), vectors(), **SUMMARY)
    alone = story_coverage.summarise_stories(members().iloc[:4], vectors()[:4], **SUMMARY)
    shuffled = story_coverage.summarise_stories(members().iloc[[3, 1, 0, 2]], vectors()[[3, 1, 0, 2]], **SUMMARY)
    pd.testing.assert_frame_equal(both[both["story_id"] == "s1"].reset_index(drop=True), alone, check_exact=True)
    pd.testing.assert_frame_equal(alone, shuffled, check_exact=True)


def test_new_leanings_relabel_a_stored_table_as_a_fresh_summary_would():
    table = story_coverage.summarise_stories(members(), vectors(), **SUMMARY)
    flipped = {"left-post": "left", "right-daily": "left", "right-weekly": "right", "wire": None}
    fresh = story_coverage.summarise_stories(members().assign(leaning=members()["outlet"].map(flipped)), vectors(),
                                             **SUMMARY)
    relabelled = story_coverage.label_leanings(table, flipped, leaning_source="source ratings", blindspot_share=0.8,
                                               blindspot_min_outlets=2)
    pd.testing.assert_frame_equal(relabelled, fresh, check_exact=True)
    assert relabelled.drop_duplicates("story_id")["blindspot"].tolist() == ["right", ""]


def test_unknown_sentiment_label_is_named():
    with pytest.raises(ValueError, match=r"unknown sentiment labels \['joyful'\]"):
        story_coverage.sentiment_scores(pd.Series(["positive", "joyful"]))


def test_outlet_pairs_without_a_shared_story_are_listed_with_no_gap():
    table = pd.DataFrame({"story_id": ["s1", "s1", "s2"], "outlet": ["a", "b", "c"], "sentiment": [1.0, np.nan, 0.0]})
    agreement = story_coverage.outlet_agreement(table, min_shared=1).set_index(["outlet_a", "outlet_b"])
    assert agreement["shared_stories"].to_dict() == {("a", "b"): 1, ("a", "c"): 0, ("b", "c"): 0}
    assert agreement["coverage_jaccard"].to_dict() == {("a", "b"): 1.0, ("a", "c"): 0.0, ("b", "c"): 0.0}
    assert agreement["sentiment_gap"].isna().all()  # b's sentiment is unknown, c shares no story
