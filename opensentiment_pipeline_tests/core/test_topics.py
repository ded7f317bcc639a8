"""Topic metrics on hand-built vectors, and the two vectors per article from one peft-wrapped model."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from opensentiment_pipeline.core.model import modeling
from opensentiment_pipeline.core.vectors import backends, encoding, topic_quality

BASE = "packaged:all-MiniLM-L6-v2"
LABELS = ["negative", "neutral", "positive"]
TEXTS = [
    "The central bank raised interest rates by half a point to fight inflation.",
    "Storm floods the harbour and closes the ferry.",
    "The minister resigned amid a scandal over undeclared party donations.",
    "Fans celebrated the late winner in the cup final.",
    "Mortgage costs climb after the rate decision.",
]


def test_precision_at_k_counts_same_topic_neighbours_and_skips_unlabelled_rows():
    # Two tight pairs (a, b) plus an unlabelled row that sits right on top of the first "a".
    vectors = np.array([[1.0, 0.0], [0.95, 0.05], [0.0, 1.0], [0.05, 0.95], [1.0, 0.01]])
    assert topic_quality.topic_precision_at_k(vectors, ["a", "a", "b", "b", None], k=1) == 1.0
    # With k=2 each row's second neighbour has the other topic.
    assert topic_quality.topic_precision_at_k(vectors, ["a", "a", "b", "b", None], k=2) == 0.5
    assert topic_quality.topic_precision_at_k(vectors, ["a", "b", "a", "b", None], k=1) == 0.0


def test_precision_at_k_samples_queries_reproducibly_and_names_too_few_rows():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, 8))
    labels = list(rng.choice(["x", "y", "z"], 200))
    sampled = topic_quality.topic_precision_at_k(vectors, labels, k=5, max_queries=50, seed=1)
    assert sampled == topic_quality.topic_precision_at_k(vectors, labels, k=5, max_queries=50, seed=1)
    assert sampled != topic_quality.topic_precision_at_k(vectors, labels, k=5)
    with pytest.raises(ValueError, match="need more than k=10 articles with a topic"):
        topic_quality.topic_precision_at_k(vectors[:5], labels[:5], k=10)


def test_chance_nmi_and_report():
    assert topic_quality.topic_chance(["a", "a", "b", None]) == pytest.approx((2 / 3) ** 2 + (1 / 3) ** 2)
    assert topic_quality.cluster_topic_nmi([0, 0, 1, 1, 5], ["a", "a", "b", "b", None]) == pytest.approx(1.0)
    # Noise (-1) is one more cluster: two topics folded into it carry no information.
    assert topic_quality.cluster_topic_nmi([-1, -1, -1, -1], ["a", "a", "b", "b"]) == 0.0
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]] * 3)
    report = topic_quality.topic_report({"v": vectors}, ["a", "a", "b", "b"] * 3, k=2)
    assert report == {"topic_precision_at_2_v": 1.0, "topic_chance": 0.5, "num_topic_labelled": 12}
    assert topic_quality.topic_report({"v": vectors}, [None] * 12, k=2) == {}


@pytest.fixture(scope="module")
def peft_model():
    """A 2-layer MiniLM classifier with a LoRA adapter whose weights are not zero, so it changes the vectors."""
    torch.manual_seed(0)
    model = modeling.add_lora(modeling.load_classifier(BASE, labels=LABELS, num_layers=2), lora_r=4, lora_alpha=8,
                              lora_dropout=0.0, target_modules=["query", "value", "dense"])
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.2)
    return model.eval(), modeling.load_tokenizer(BASE)


def _embed(peft_model, backend):
    model, tokenizer = peft_model
    return encoding.embed_articles(model, tokenizer, TEXTS, labels=LABELS, batch_size=2, max_length=64,
                                 device="cpu", max_chunks=1, backend=backend)


def test_topic_vectors_are_the_base_encoders_and_the_adapter_is_back_on_afterwards(peft_model):
    model, tokenizer = peft_model
    vectors = _embed(peft_model, "torch")
    base = encoding.encode_texts(modeling.load_encoder(BASE, num_layers=2), tokenizer, TEXTS, batch_size=2,
                                   max_length=64, device="cpu")
    np.testing.assert_allclose(vectors.topic, base, atol=1e-5)
    assert (vectors.topic * vectors.sentiment).sum(axis=1).max() < 0.999  # the adapter really moved them
    assert vectors.proba.shape == (5, 3) and np.allclose(vectors.proba.sum(axis=1), 1.0)
    again = _embed(peft_model, "torch")
    np.testing.assert_allclose(again.sentiment, vectors.sentiment, atol=1e-6)


def test_onnx_backend_gives_the_same_two_vectors_and_sentiment(peft_model):
    torch_vectors = _embed(peft_model, "torch")
    onnx_vectors = _embed(peft_model, "onnx")
    assert (torch_vectors.topic * onnx_vectors.topic).sum(axis=1).min() >= 0.9999
    assert (torch_vectors.sentiment * onnx_vectors.sentiment).sum(axis=1).min() >= 0.9999
    np.testing.assert_allclose(onnx_vectors.proba, torch_vectors.proba, atol=1e-4)


def test_bf16_backend_holds_the_fidelity_tolerance(peft_model):
    float32, bf16 = _embed(peft_model, "torch"), _embed(peft_model, "bf16")
    for a, b in ((float32.topic, bf16.topic), (float32.sentiment, bf16.sentiment)):
        cosine = (a * b).sum(axis=1)
        assert cosine.min() >= 0.99 and cosine.mean() >= 0.995  # the stated tolerance
        assert not np.array_equal(a, b)  # really computed in bfloat16
    assert not torch.is_autocast_enabled("cpu")  # switched off again afterwards


def test_unknown_backend_is_named(peft_model):
    with pytest.raises(ValueError, match="backend must be 'torch', 'onnx' or 'bf16'; got 'tpu'"):
        _embed(peft_model, "tpu")
    with pytest.raises(ValueError, match="backend 'onnx' runs on the CPU only"):
        backends.pick_backend("onnx", device=torch.device("cuda"), num_texts=10, onnx_min_texts=1)
    assert backends.pick_backend("auto", device=torch.device("cpu"), num_texts=10, onnx_min_texts=1000) == "torch"


def test_auto_takes_bf16_only_where_the_cpu_computes_it_natively(monkeypatch):
    pick = functools.partial(backends.pick_backend, "auto", num_texts=5000, onnx_min_texts=1000)
    assert pick(device=torch.device("cpu"), native_bf16=True) == "bf16"
    assert pick(device=torch.device("cpu"), native_bf16=False) == "onnx"
    assert pick(device=torch.device("cuda"), native_bf16=True) == "torch"  # CUDA autocasts inside encode_texts
    for flags, native in (("fpu sse avx2 avx512f avx512_vnni", False), ("avx512f avx512_bf16 avx512_vnni", True),
                          ("avx2 amx_tile amx_bf16", True)):
        monkeypatch.setattr(backends.Path, "read_text", lambda self, *a, flags=flags, **k: f"flags\t: {flags}\n")
        assert backends.cpu_has_native_bf16() is native
        assert pick(device=torch.device("cpu")) == ("bf16" if native else "onnx")
