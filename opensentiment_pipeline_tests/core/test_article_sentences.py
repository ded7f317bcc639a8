"""Sentence splitting, sentence scoring (the evaluation's scorer) and an article's sentiment from its sentences."""

import numpy as np
import pandas as pd
import pytest

from opensentiment_pipeline.core.analysis.article_sentiment import (aggregate_sentences, band_labels,
                                                                    choose_neutral_band)
from opensentiment_pipeline.core.model import modeling, training
from opensentiment_pipeline.core.schema import SENTIMENT_LABELS
from opensentiment_pipeline.core.vectors import sentences


@pytest.fixture(scope="module")
def untrained_adapter(tmp_path_factory):
    """A one-layer MiniLM with a fresh LoRA adapter and random head, saved as train_adapter saves one."""
    out = tmp_path_factory.mktemp("sentence_adapter")
    model = modeling.load_classifier("packaged:all-MiniLM-L6-v2", labels=SENTIMENT_LABELS, num_layers=1)
    model = modeling.add_lora(model, lora_r=2, lora_alpha=4, lora_dropout=0.0, target_modules=["query", "value"])
    training.save_adapter(model, modeling.load_tokenizer("packaged:all-MiniLM-L6-v2"), out, modeling.AdapterManifest(
        base_model="packaged:all-MiniLM-L6-v2", labels=list(SENTIMENT_LABELS), num_layers=1, max_length=24,
        pair_input=True))
    return modeling.load_adapter(out)


def test_an_article_without_sentence_ending_punctuation_is_one_sentence():
    text = "council approves new bus lanes on the high street after a two year consultation"
    split = sentences.split_sentences([text, "   ", ""], max_sentences=5)
    assert split[["text_idx", "sentence_idx", "start", "end"]].values.tolist() == [[0, 0, 0, len(text)]]
    assert split["sentence"].tolist() == [text]


def test_split_keeps_offsets_paragraphs_and_the_cap():
    text = "Flood hits the town. Homes were lost, Mr. Reed said.\nRepairs begin\nThird line. Fourth one."
    split = sentences.split_sentences([text], max_sentences=4)
    assert split["sentence"].tolist() == ["Flood hits the town.", "Homes were lost, Mr. Reed said.", "Repairs begin",
                                          "Third line."]
    assert [text[s:e] for s, e in zip(split["start"], split["end"])] == split["sentence"].tolist()
    with pytest.raises(ValueError, match="max_sentences must be >= 1; got 0"):
        sentences.split_sentences([text], max_sentences=0)


def test_sentence_scores_match_the_evaluation(untrained_adapter):
    manifest, tokenizer, model = untrained_adapter
    texts = ["Shares fell sharply after the loss. The board resigned", "A quiet day at the harbour."]
    scored = sentences.score_sentences(model, tokenizer, texts, ["a1", "a2"], labels=manifest.labels,
                                       max_sentences=10, max_length=manifest.max_length, batch_size=2, device="cpu")
    frame = scored.sentences
    assert frame[["article_id", "sentence_idx"]].values.tolist() == [["a1", 0], ["a1", 1], ["a2", 0]]
    expected = training.predict_proba(model, tokenizer, pd.DataFrame({"text": frame["sentence"]}),
                                      manifest=manifest, batch_size=8)
    got = frame[["p_negative", "p_neutral", "p_positive"]].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert frame["sentiment"].tolist() == [manifest.labels[k] for k in expected.argmax(1)]
    vectors = sentences.article_vectors(scored, n_texts=3)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:2], axis=1), 1.0, atol=1e-5)
    assert not vectors[2].any()  # a text position without sentences gets a zero row


def test_aggregate_gives_shares_net_and_banded_label():
    frame = pd.DataFrame({
        "article_id": ["a", "a", "a", "a", "b", "c"],
        "p_negative": [0.9, 0.7, 0.1, 0.1, 0.2, 0.1],
        "p_neutral": [0.05, 0.2, 0.8, 0.1, 0.6, 0.2],
        "p_positive": [0.05, 0.1, 0.1, 0.8, 0.2, 0.7],
        "sentiment": ["negative", "negative", "neutral", "positive", "neutral", "positive"],
    })
    out = aggregate_sentences(frame, neutral_band=0.1).set_index("article_id")
    assert out["n_sentences"].to_dict() == {"a": 4, "b": 1, "c": 1}
    assert out.loc["a", "negative_share"] == 0.5 and out.loc["a", "positive_share"] == 0.25
    assert out["net_sentiment"].round(4).to_dict() == {"a": -0.1875, "b": 0.0, "c": 0.6}
    assert out["sentiment"].to_dict() == {"a": "negative", "b": "neutral", "c": "positive"}
    assert out.loc["a", "sentiment_confidence"] == pytest.approx((0.9 + 0.7 + 0.1 + 0.1) / 4)


def test_band_is_chosen_on_validation_sentences():
    proba = np.array([[0.9, 0.1, 0.0], [0.4, 0.3, 0.3], [0.0, 0.2, 0.8], [0.3, 0.4, 0.3]])
    band, f1 = choose_neutral_band(proba, ["negative", "neutral", "positive", "neutral"], labels=SENTIMENT_LABELS,
                                   grid=[0.0, 0.05, 0.5, 0.9])
    assert (band, f1) == (0.5, 1.0)  # below 0.1 row 1 (net -0.1) is called negative; at 0.9 row 0 (-0.9) is not
    with pytest.raises(ValueError, match=r"neutral_band must be in \[0, 1\); got 1.5"):
        band_labels(np.zeros(1), neutral_band=1.5)
