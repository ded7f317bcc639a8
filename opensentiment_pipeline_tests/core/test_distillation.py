"""Distillation: soft targets from a teacher, unlabelled rows, no test rows, validation on human labels."""

import numpy as np
import pandas as pd
import pytest
import torch

from opensentiment_pipeline.core.model import distillation, training
from opensentiment_pipeline.core.schema import SENTIMENT_LABELS


def labelled() -> pd.DataFrame:
    return pd.DataFrame({
        "article_id": ["a", "b", "c", "d"],
        "text": ["Profit soared", "Homes destroyed", "Council meets", "Shares slump"],
        "target": [None, None, None, None],
        "label": ["positive", "negative", "neutral", "negative"],
        "split": ["train", "train", "val", "test"],
        "weight": 1.0,
    })


def test_losses_mix_label_and_teacher_and_unlabelled_rows_use_the_teacher_alone():
    logits = torch.tensor([[0.0, 0.0, 2.0], [1.0, 0.0, 0.0]])
    soft = torch.tensor([[0.2, 0.2, 0.6], [0.1, 0.8, 0.1]])
    log_p = torch.log_softmax(logits, 1)
    losses = training.example_losses(logits, torch.tensor([2, -1]), soft, 0.25)
    expected_first = 0.25 * -log_p[0, 2] + 0.75 * -(soft[0] * log_p[0]).sum()
    torch.testing.assert_close(losses, torch.stack([expected_first, -(soft[1] * log_p[1]).sum()]))
    # without soft targets it is plain cross-entropy
    torch.testing.assert_close(training.example_losses(logits, torch.tensor([2, 0]), None, 0.25),
                               torch.nn.functional.cross_entropy(logits, torch.tensor([2, 0]), reduction="none"))


def test_student_examples_keep_val_human_drop_test_and_add_the_pool():
    examples = labelled()
    pool = distillation.unlabelled_pool(pd.DataFrame({"article_id": ["x", "y", "z"], "title": ["Rates", "", "Shares slump"],
                                                      "text": ["Bank raises rates", "Rain tomorrow", ""]}),
                                        examples, limit=10, seed=0)
    assert pool["text"].tolist() == ["Rates. Bank raises rates", "Rain tomorrow"]  # a test sentence never enters
    frame = distillation.student_examples(examples, np.array([[0.1, 0.1, 0.8], [0.7, 0.2, 0.1]]), pool,
                                          np.array([[0.2, 0.5, 0.3], [0.3, 0.4, 0.3]]), labels=SENTIMENT_LABELS)
    assert "test" not in set(frame["split"])
    assert frame["split"].tolist() == ["train"] * 4 + ["val"]
    assert frame["label"].isna().tolist() == [False, False, True, True, False]
    assert frame.loc[frame["split"] == "val", training.soft_columns(SENTIMENT_LABELS)].isna().all(axis=None)
    with pytest.raises(ValueError, match="do not match the rows"):
        distillation.student_examples(examples, np.zeros((1, 3)), pool, np.zeros((2, 3)), labels=SENTIMENT_LABELS)


def test_soft_targets_fill_labelled_rows_without_teacher_with_one_hot():
    frame = pd.DataFrame({"soft_negative": [np.nan, 0.2], "soft_neutral": [np.nan, 0.3], "soft_positive": [np.nan, 0.5]})
    soft = training.soft_targets(frame, SENTIMENT_LABELS, torch.tensor([1, -1]))
    torch.testing.assert_close(soft, torch.tensor([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]]))


def test_unlabelled_rows_need_soft_targets_and_val_needs_labels():
    frame = labelled().assign(label=[None, "negative", "neutral", "negative"])
    with pytest.raises(ValueError, match="1 train/val rows have no label and there are no soft targets"):
        training.check_examples(frame, labels=SENTIMENT_LABELS)
    frame = labelled().assign(label=["positive", "negative", None, "negative"],
                              **{c: 0.3 for c in training.soft_columns(SENTIMENT_LABELS)})
    with pytest.raises(ValueError, match="val rows must carry a label"):
        training.check_examples(frame, labels=SENTIMENT_LABELS)


def test_a_student_learns_the_teachers_view_of_unlabelled_text(tmp_path):
    """Unlabelled rows whose soft targets all say 'positive' pull the student towards positive on them."""
    words = {"positive": "gains", "negative": "losses", "neutral": "meeting"}
    rows = [(f"{words[label]} {i}", label, "val" if i % 5 == 0 else "train") for label in words for i in range(10)]
    frame = pd.DataFrame(rows, columns=["text", "label", "split"])
    pool = pd.DataFrame({"text": [f"zebra crossing {i}" for i in range(30)], "label": None, "split": "train"})
    soft = training.soft_columns(SENTIMENT_LABELS)
    pool[soft] = [0.0, 0.0, 1.0]
    result = training.train_adapter(pd.concat([frame, pool], ignore_index=True), base_model="packaged:all-MiniLM-L6-v2",
                                    out_dir=tmp_path, num_layers=1, lora_r=4, lora_alpha=8, lora_dropout=0.0,
                                    target_modules=["auto"], max_length=16, learning_rate=1e-2, weight_decay=0.0,
                                    warmup_ratio=0.0, epochs=3, batch_size=8, grad_accum=1, patience=5, seed=0,
                                    device="cpu", precision="auto", distill_hard_weight=0.5)
    from opensentiment_pipeline.core.model import modeling

    manifest, tokenizer, model = modeling.load_adapter(tmp_path)
    proba = training.predict_proba(model, tokenizer, pd.DataFrame({"text": ["zebra crossing 99"]}), manifest=manifest,
                                   batch_size=1)
    assert result.history and proba[0].argmax() == SENTIMENT_LABELS.index("positive")
