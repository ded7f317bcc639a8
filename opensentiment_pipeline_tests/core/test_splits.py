import pandas as pd
import pytest

from opensentiment_pipeline.core.labels.splits import make_examples


def _articles_and_labels():
    ids = [f"s{i}" for i in range(20)] + ["fixed-train", "fixed-test"]
    articles = pd.DataFrame({
        "article_id": ids, "text": [f"text {i}" for i in ids], "target": None,
        "source": ["free"] * 20 + ["fixed", "fixed"], "outlet": "o",
        "split": [None] * 20 + ["train", "test"],
    })
    merged = pd.DataFrame({"article_id": ids, "task": "sentiment",
                           "label": (["negative", "positive"] * 10) + ["neutral", "neutral"],
                           "agreement": [0.5] * 22})
    return articles, merged


def test_fixed_splits_are_kept_and_free_rows_are_split_stratified():
    articles, merged = _articles_and_labels()
    examples = make_examples(articles, merged, task="sentiment", test_size=0.2, val_size=0.25, seed=0,
                             weight_by_agreement=False).set_index("article_id")
    assert examples.loc["fixed-test", "split"] == "test"
    assert examples.loc["fixed-train", "split"] in {"train", "val"}
    free = examples[examples["source"] == "free"]
    assert free["split"].value_counts().to_dict() == {"train": 12, "test": 4, "val": 4}
    # stratified: each held-out part has both labels equally
    assert free[free["split"] == "test"]["label"].value_counts().to_dict() == {"negative": 2, "positive": 2}
    assert (examples["weight"] == 1.0).all()


def test_same_seed_same_split_and_agreement_weights():
    articles, merged = _articles_and_labels()
    first = make_examples(articles, merged, task="sentiment", test_size=0.2, val_size=0.25, seed=3,
                          weight_by_agreement=True)
    second = make_examples(articles, merged, task="sentiment", test_size=0.2, val_size=0.25, seed=3,
                           weight_by_agreement=True)
    pd.testing.assert_frame_equal(first, second)
    assert (first["weight"] == 0.5).all()


def test_missing_task_is_named():
    articles, merged = _articles_and_labels()
    with pytest.raises(ValueError, match=r"no merged labels for task 'bias'; tasks present: \['sentiment'\]"):
        make_examples(articles, merged, task="bias", test_size=0.2, val_size=0.2, seed=0, weight_by_agreement=False)


def _frames(rows: list[tuple[str, str, str, str | None, str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(article_id, text, source, split, label) rows -> (articles, merged)."""
    ids, texts, sources, splits, labels = map(list, zip(*rows))
    articles = pd.DataFrame({"article_id": ids, "text": texts, "target": [f"t{i}" for i in range(len(ids))],
                             "source": sources, "outlet": "o", "split": splits})
    merged = pd.DataFrame({"article_id": ids, "task": "sentiment", "label": labels, "agreement": 1.0})
    return articles, merged


def _splits(articles, merged, **kwargs) -> dict[str, str]:
    examples = make_examples(articles, merged, task="sentiment", **{"test_size": 0.25, "val_size": 0.25, "seed": 0,
                                                                    "weight_by_agreement": False, **kwargs})
    return dict(zip(examples["article_id"], examples["split"]))


def test_given_val_rows_are_kept_and_their_source_gets_no_carved_val():
    rows = [(f"tr{i}", f"train sentence {i}", "fixed", "train", ["negative", "positive"][i % 2]) for i in range(8)]
    rows += [("v1", "val sentence", "fixed", "val", "neutral"), ("te1", "test sentence", "fixed", "test", "neutral")]
    splits = _splits(*_frames(rows))
    assert splits == {**{f"tr{i}": "train" for i in range(8)}, "v1": "val", "te1": "test"}


def test_all_targets_of_one_sentence_land_on_the_same_side():
    labels = ["negative", "neutral", "positive"]
    rows = [(f"s{s}-{t}", f"Sentence {s} names Alice, Bob and Carol.", "free", None, labels[(s + t) % 3])
            for s in range(12) for t in range(3)]
    articles, merged = _frames(rows)
    splits = _splits(articles, merged)
    per_sentence = {s: {splits[f"s{s}-{t}"] for t in range(3)} for s in range(12)}
    assert all(len(sides) == 1 for sides in per_sentence.values()), per_sentence
    assert sorted(next(iter(v)) for v in per_sentence.values()) == ["test"] * 3 + ["train"] * 6 + ["val"] * 3  # sentences, not rows


def test_a_free_row_follows_a_fixed_row_of_the_same_sentence_and_copies_across_sources_agree():
    rows = [("fixed-test", "The mayor praised the new bridge.", "gold", "test", "positive"),
            ("free-copy", "the mayor praised the NEW bridge", "extra", None, "neutral")]  # same sentence, other target
    rows += [(f"x{i}", f"Unrelated sentence {i}.", "extra", None, ["negative", "positive"][i % 2]) for i in range(8)]
    rows += [(f"y{i}", f"Unrelated sentence {i}.", "more", None, ["negative", "positive"][i % 2]) for i in range(8)]
    splits = _splits(*_frames(rows))
    assert splits["free-copy"] == "test"
    assert all(splits[f"x{i}"] == splits[f"y{i}"] for i in range(8))  # one sentence in two free sources: one side
