"""An int8 copy of an encoder for the CPU: a path `embed_speed.py` measures and the pipeline does not ship.

Its vectors differ from the float32 encoder's beyond the project's tolerance (see `quantize_for_cpu`), so the
pipeline embeds in float32 (or ONNX / bf16, which stay within it); this module lives next to the benchmark.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch


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
