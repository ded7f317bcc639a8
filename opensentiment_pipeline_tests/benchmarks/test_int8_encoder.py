"""The int8 encoder the embedding benchmark measures (benchmarks/int8_encoder.py), against the float32 path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from int8_encoder import quantize_for_cpu

from opensentiment_pipeline.core.vectors.backends import is_quantized
from opensentiment_pipeline.core.vectors.encoding import encode_texts
from opensentiment_pipeline_tests.core.test_embeddings import TEXTS, encode


@pytest.fixture(scope="session")
def minilm_int8_attention(minilm):
    return quantize_for_cpu(minilm[0], layers="attention")


def test_int8_attention_encoder_stays_within_its_tolerance_of_fp32(minilm, minilm_int8_attention):
    _, tokenizer = minilm
    fp32 = encode(minilm, TEXTS)
    int8 = encode((minilm_int8_attention, tokenizer), TEXTS)
    cosine = (fp32 * int8).sum(axis=1)
    # The per-text bound of the stated tolerance. Its mean bound (>= 0.995) is checked by
    # benchmarks/embed_speed.py on 1,000 real texts; on these four the mean is 0.9947, at the edge.
    assert cosine.min() >= 0.99
    assert not np.array_equal(fp32, int8)  # really the quantised layers, not the float ones


def test_quantize_for_cpu_leaves_the_float_encoder_unchanged(minilm, minilm_int8_attention):
    model, _ = minilm
    assert is_quantized(minilm_int8_attention) and not is_quantized(model)
    assert all(isinstance(m, torch.nn.Linear) for n, m in model.named_modules() if n.endswith("attention.self.query"))
    quantized_names = {
        n for n, m in minilm_int8_attention.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)
    }
    assert "encoder.layer.0.attention.self.query" in quantized_names
    assert "encoder.layer.0.intermediate.dense" not in quantized_names


def test_quantized_encoder_is_refused_off_the_cpu_and_bad_layers_are_named(minilm, minilm_int8_attention):
    _, tokenizer = minilm
    with pytest.raises(ValueError, match="quantised for the CPU .* pass device='cpu' or the float encoder"):
        encode_texts(minilm_int8_attention, tokenizer, TEXTS, batch_size=2, max_length=32,
                     device=torch.device("cuda"))
    with pytest.raises(ValueError, match="layers must be 'all' or 'attention'; got 'ffn'"):
        quantize_for_cpu(minilm[0], layers="ffn")
