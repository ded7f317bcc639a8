import pandas as pd
import pytest

from opensentiment_pipeline.core.splits import make_examples


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
