"""How an encoder runs on the CPU: plain torch, torch under bfloat16 autocast, or an ONNX Runtime export.

`pick_backend` chooses; `backend_encoder` hands `encoding.encode_texts` the encoder to run. ONNX Runtime gives
the same vectors (cosine >= 0.9999) at 1.1-1.2x `SentenceTransformer.encode` on an idle 2-core CPU; bf16 is faster
only on CPUs with native bfloat16 (benchmarks/embed_speed.py; benchmarks/RESULTS.md, "Embedding speed").
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

logger = logging.getLogger(__name__)


BACKENDS = ("auto", "torch", "onnx", "bf16")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX; Linux /proc/cpuinfo flags). Only
    there is torch's CPU bf16 autocast faster than float32: 1.7x on 256-token windows for MiniLM and mpnet
    (benchmarks/RESULTS.md, "Embedding speed"), while on an AVX2-only CPU it was slower."""
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
    Runtime's fused kernels made it 1.1-1.2x `SentenceTransformer.encode` on an idle 2-core CPU, for MiniLM and
    mpnet, sentences and 256-token articles (benchmarks/embed_speed.py; benchmarks/RESULTS.md, "Embedding
    speed"). The export takes seconds (MiniLM) to minutes (mpnet), so it pays off only on many texts.

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


@contextlib.contextmanager
def backend_encoder(encoder: Any, backend: str):
    """`encoder` run by `backend` ("torch", "bf16" or "onnx"), for `encoding.encode_texts`."""
    if backend == "torch":
        yield encoder
    elif backend == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield encoder
    else:
        yield onnx_encoder(encoder)
