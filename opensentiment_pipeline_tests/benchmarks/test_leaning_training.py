"""Leaning projection with an outlet adversary: gradient reversal, and less outlet identity in z."""

from __future__ import annotations

import leaning_training
import numpy as np
import pandas as pd
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: these models are tiny, and on a busy 2-core machine two threads spin against each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SETTINGS = dict(hidden=16, epochs=40, learning_rate=3e-3, weight_decay=0.0, dropout=0.0, batch_size=32, seed=0)


def _articles(seed: int = 0):
    """8 outlets; dimension 0 carries leaning, the other 15 a strong per-outlet signature."""
    rng = np.random.default_rng(seed)
    vectors, labels, outlets = [], [], []
    for n in range(8):
        side = "left" if n < 4 else "right"
        signature = rng.normal(0, 2.0, 15)
        for _ in range(30):
            lean = (-1.0 if side == "left" else 1.0) + rng.normal(0, 0.7)
            vectors.append([lean, *(signature + rng.normal(0, 0.3, 15))])
            labels.append(side)
            outlets.append(f"o{n}")
    return np.array(vectors, dtype=np.float32), np.array(labels), np.array(outlets)


def test_reverse_gradient_flips_and_scales_the_gradient():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = leaning_training.reverse_gradient(x, 0.5)
    (3 * y).sum().backward()
    assert y.tolist() == [1.0, 2.0] and x.grad.tolist() == [-1.5, -1.5]


def test_the_adversary_removes_outlet_identity_and_keeps_leaning():
    vectors, labels, outlets = _articles()
    plain = leaning_training.train_leaning_projection(vectors, labels, outlets, adversary_weight=0.0, **SETTINGS)
    adversarial = leaning_training.train_leaning_projection(vectors, labels, outlets, adversary_weight=1.0,
                                                            **SETTINGS)
    assert plain.final_outlet_accuracy > 0.9
    assert adversarial.final_outlet_accuracy < plain.final_outlet_accuracy - 0.2
    held_out, held_labels, _ = _articles(seed=1)  # new outlets with new signatures
    predicted = np.array(leaning_training.LEANINGS)[adversarial.predict_proba(held_out).argmax(axis=1)]
    assert (predicted == held_labels).mean() > 0.7


def test_same_seed_gives_the_same_projection():
    vectors, labels, outlets = _articles()
    first = leaning_training.train_leaning_projection(vectors, labels, outlets, adversary_weight=1.0, **SETTINGS)
    second = leaning_training.train_leaning_projection(vectors, labels, outlets, adversary_weight=1.0, **SETTINGS)
    np.testing.assert_array_equal(first.predict_proba(vectors), second.predict_proba(vectors))


def test_unknown_leanings_are_named():
    vectors, labels, outlets = _articles()
    with pytest.raises(ValueError, match=r"unknown leanings \['far-left'\]"):
        leaning_training.train_leaning_projection(vectors, np.where(labels == "left", "far-left", labels.astype(object)), outlets,
                                                  adversary_weight=1.0, **SETTINGS)


LORA_SETTINGS = dict(base_model="packaged:all-MiniLM-L6-v2", num_layers=1, lora_r=4, lora_alpha=8, lora_dropout=0.0,
                     target_modules=["query", "value"], max_length=24, learning_rate=1e-2, weight_decay=0.0,
                     warmup_ratio=0.0, epochs=3, batch_size=8, grad_accum=1, patience=3, device="cpu")


def _worded_articles():
    """Three leanings, each with its own words, five outlets each, four articles per outlet."""
    words = {"left": "workers union wages climate", "center": "council budget report schedule",
             "right": "tax cuts border security"}
    texts, labels, outlets = [], [], []
    for leaning, phrase in words.items():
        for outlet in range(5):
            for i in range(4):
                texts.append(f"{phrase} story {i} from outlet {outlet}")
                labels.append(leaning)
                outlets.append(f"{leaning}-{outlet}")
    outlets_arr = np.array(outlets)
    folds = [(np.flatnonzero(~np.isin(outlets_arr, held)), np.flatnonzero(np.isin(outlets_arr, held)))
             for held in (["left-0", "center-0", "right-0"], ["left-1", "center-1", "right-1"])]
    return texts, labels, outlets, folds


def test_lora_leaning_adapter_is_validated_on_outlets_it_never_trained_on(monkeypatch):
    from opensentiment_pipeline.core.model import training

    texts, labels, outlets, folds = _worded_articles()
    outlet_of = dict(zip(texts, outlets))
    seen = []
    real_train = training.train_adapter

    def spy(examples, **kwargs):
        seen.append(examples)
        return real_train(examples, **kwargs)

    monkeypatch.setattr(training, "train_adapter", spy)
    proba, history = leaning_training.lora_held_out_proba(texts, labels, outlets, folds, settings=LORA_SETTINGS)
    assert proba.shape == (len(texts), 3)
    held_out = np.concatenate([test for _, test in folds])
    np.testing.assert_allclose(proba[held_out].sum(1), 1.0, rtol=1e-5)
    assert (proba[np.setdiff1d(np.arange(len(texts)), held_out)] == 0).all()  # only held-out rows are predicted
    assert [h["fold"] for h in history] == [0, 1] and all(h["val_outlets"] >= 1 for h in history)
    for (train, test), examples in zip(folds, seen):
        assert len(examples) == len(train)  # the test fold's articles never reach training
        assert set(examples["text"]).isdisjoint(np.asarray(texts, dtype=object)[test])
        val_outlets = {outlet_of[t] for t in examples.loc[examples["split"] == "val", "text"]}
        train_outlets = {outlet_of[t] for t in examples.loc[examples["split"] == "train", "text"]}
        assert val_outlets and val_outlets.isdisjoint(train_outlets)  # validated on outlets it never trained on
        # classes are balanced by weight over the training rows
        weights = examples[examples["split"] == "train"].groupby("label")["weight"].sum()
        np.testing.assert_allclose(weights.to_numpy(), weights.iloc[0], rtol=1e-6)
    # the adapter learnt the words: on held-out outlets the right class gets the highest probability
    predicted = np.array(leaning_training.LEANINGS)[proba[held_out].argmax(1)]
    assert (predicted == np.asarray(labels)[held_out]).mean() >= 0.6


def test_adversarial_lora_learns_leaning_while_its_outlet_head_is_fought(monkeypatch):
    from opensentiment_pipeline.core.model import modeling, training

    texts, labels, outlets, folds = _worded_articles()
    monkeypatch.setattr(training, "train_adapter", lambda *a, **k: pytest.fail("the adversary has its own loop"))
    trained = []
    real = leaning_training.train_adversarial_lora

    def keep(*args, **kwargs):
        trained.append(real(*args, **kwargs))
        return trained[-1]

    monkeypatch.setattr(leaning_training, "train_adversarial_lora", keep)
    reversal_weights = []
    real_reverse = leaning_training.reverse_gradient

    def recorded_reverse(x, weight):
        reversal_weights.append(weight)
        return real_reverse(x, weight)

    monkeypatch.setattr(leaning_training, "reverse_gradient", recorded_reverse)
    proba, history = leaning_training.lora_held_out_proba(texts, labels, outlets, folds, settings=LORA_SETTINGS,
                                                          adversary_weight=1.0)
    held_out = np.concatenate([test for _, test in folds])
    np.testing.assert_allclose(proba[held_out].sum(1), 1.0, rtol=1e-5)
    predicted = np.array(leaning_training.LEANINGS)[proba[held_out].argmax(1)]
    assert (predicted == np.asarray(labels)[held_out]).mean() >= 0.6  # leaning survives the adversary
    assert all(0.0 <= h["adversary_outlet_accuracy"] <= 1.0 for h in history)
    # Every training step sends the outlet head's gradient back reversed, ramping from 0 up towards the weight.
    steps_per_fold = len(reversal_weights) // len(folds)
    first_fold = reversal_weights[:steps_per_fold]
    assert first_fold[0] == 0.0 and 0.9 < max(first_fold) <= 1.0
    assert all(a <= b for a, b in zip(first_fold, first_fold[1:]))
    for result, model, _ in trained:
        (classifier,) = [m for m in model.modules() if isinstance(m, modeling.MeanPoolClassifier)]
        assert not classifier.dropout._forward_pre_hooks  # the catch on the pooled vector is gone after training
        assert len(result.history) >= 1 and 0 <= result.best_epoch < len(result.history)
    with pytest.raises(ValueError, match="adversary_weight must be > 0"):
        real(pd.DataFrame({"text": ["a"], "label": ["left"], "split": ["train"]}), ["x"], adversary_weight=0.0,
             seed=0, **LORA_SETTINGS)


def test_the_reversal_weight_ramps_from_zero_to_one():
    ramp = [leaning_training.dann_ramp(p) for p in np.linspace(0.0, 1.0, 11)]
    assert ramp[0] == 0.0 and ramp[-1] == pytest.approx(1.0, abs=1e-4)
    assert all(a < b for a, b in zip(ramp, ramp[1:]))


def test_lora_leaning_refuses_folds_that_share_an_outlet():
    with pytest.raises(ValueError, match="fold 0 is not outlet-disjoint: \\['a'\\]"):
        leaning_training.lora_held_out_proba(["x", "y"], ["left", "right"], ["a", "a"],
                                             [(np.array([0]), np.array([1]))], settings={})
