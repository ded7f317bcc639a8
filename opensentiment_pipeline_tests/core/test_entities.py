"""Mentions of configured entities: aliases, word boundaries, and the (target, sentence) input."""

import pandas as pd
import pytest

from opensentiment_pipeline.core.analysis import entities


def _sentences(*texts):
    return pd.DataFrame({"article_id": [f"a{i}" for i in range(len(texts))], "sentence_idx": 0,
                         "sentence": list(texts)})


def test_an_entity_is_found_by_any_of_its_aliases():
    listed = entities.parse_entities([{"name": "Bank of England", "aliases": ["BoE", "the Bank"]},
                                      {"name": "England"}])
    found = entities.find_mentions(_sentences("The BoE raised rates.", "Bank of England staff struck in England.",
                                              "Nothing here."), listed)
    assert found[["article_id", "entity", "mention", "start", "end"]].values.tolist() == [
        ["a0", "Bank of England", "BoE", 4, 7],
        ["a1", "Bank of England", "Bank of England", 0, 15],  # the longer form wins over "England" inside it
        ["a1", "England", "England", 32, 39],
    ]


def test_a_name_inside_another_word_is_not_a_mention():
    listed = entities.parse_entities([{"name": "Trump"}, {"name": "Ford", "aliases": ["Ford Motor"]}])
    found = entities.find_mentions(_sentences("The trumpet and Trumpington.", "Oxford's Fordham campus.",
                                              "Trump's plan; Trump again.", "TRUMP shouted."), listed)
    # Only a2: "Trump's" is a mention (the apostrophe is a boundary), counted once per sentence; matching is
    # case-sensitive, so "TRUMP" and the lower-case "trumpet" do not count.
    assert found[["article_id", "mention", "start"]].values.tolist() == [["a2", "Trump", 0]]


def test_entity_config_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"'Labour' is listed for both 'Labour Party' and 'Labour'"):
        entities.parse_entities([{"name": "Labour Party", "aliases": ["Labour"]}, {"name": "Labour"}])
    with pytest.raises(ValueError, match=r"entity 'X': aliases must be a list of non-empty strings; got 'Y'"):
        entities.parse_entities([{"name": "X", "aliases": "Y"}])
    with pytest.raises(ValueError, match="entity 0 has no name"):
        entities.parse_entities([{"aliases": ["Y"]}])


def test_mentions_need_an_adapter_trained_on_pairs():
    class Manifest:
        pair_input = False
        labels = ["negative", "neutral", "positive"]

    with pytest.raises(ValueError, match=r"trained without \(target, sentence\) pairs"):
        entities.score_mentions(None, None, pd.DataFrame(), manifest=Manifest(), batch_size=4, device="cpu")
