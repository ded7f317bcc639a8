"""Leaning projection with an outlet adversary: gradient reversal, and less outlet identity in z."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from opensentiment_pipeline.core import leaning_training

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
