"""LoRA fine-tuning of a pretrained encoder for news sentiment.

`train_adapter` reads top to bottom like the recipe: check inputs, seed, build model, batches, optimiser,
epochs with validation and early stopping, save the best adapter. Speed comes from tokenising once,
length-bucketed batches with dynamic padding (padding dominates CPU cost: LoRA on short sentences trained
at 125 samples/s with dynamic padding and 41 padded to 64, measured on 2 cores), bf16 autocast and a fused
AdamW on CUDA, and no host-device syncs in the inner loop besides the loss read once per epoch.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from opensentiment_pipeline.core.model import modeling
from opensentiment_pipeline.core.schema import SENTIMENT_LABELS, MetricsLogger, TrainResult, ignore_metrics

logger = logging.getLogger(__name__)


SOFT_PREFIX = "soft_"  # examples may carry a teacher's class probabilities as soft_<label> columns (distillation)


def soft_columns(labels: Sequence[str]) -> list[str]:
    """Column names of soft targets, one per label: `soft_negative`, ..."""
    return [f"{SOFT_PREFIX}{label}" for label in labels]


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_examples(examples: pd.DataFrame, *, labels: Sequence[str]) -> None:
    """Fail early, naming the problem, instead of deep inside a tokenizer or loss."""
    missing = {"text", "label", "split"} - set(examples.columns)
    if missing:
        raise ValueError(f"training examples lack columns {sorted(missing)}; got {list(examples.columns)}")
    soft = soft_columns(labels)
    has_soft = all(c in examples for c in soft)
    unlabelled = examples["label"].isna() & examples["split"].isin(["train", "val"])
    if unlabelled.any():
        if not has_soft:
            raise ValueError(f"{int(unlabelled.sum())} train/val rows have no label and there are no soft targets "
                             f"({soft}); drop them or add the teacher's probabilities")
        if examples.loc[unlabelled, soft].isna().any(axis=None):
            raise ValueError("rows without a label need soft targets in every column of " + str(soft))
        if (examples.loc[unlabelled, "split"] == "val").any():
            raise ValueError("val rows must carry a label: validation chooses the epoch on human labels")
    unknown = set(examples["label"].dropna()) - set(labels)
    if unknown:
        raise ValueError(f"unknown labels {sorted(unknown)}; expected a subset of {list(labels)}")
    for split in ("train", "val"):
        if not (examples["split"] == split).any():
            raise ValueError(f"no {split!r} rows in the training examples; splits present: {sorted(examples['split'].unique())}")


@dataclass(frozen=True)
class Encoded:
    """Token ids of one split, unpadded, with labels and per-example loss weights."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: torch.Tensor  # (n,) long; -1 where a row has no human label (distillation on unlabelled text)
    weights: torch.Tensor  # (n,) float
    soft: torch.Tensor | None = None  # (n, n_labels) teacher probabilities; one-hot of the label where absent


def encode_examples(frame: pd.DataFrame, tokenizer, *, labels: Sequence[str], max_length: int, pair_input: bool) -> Encoded:
    """Tokenise once, without padding.

    With `pair_input`, rows with a target become `[CLS] target [SEP] text [SEP]` pairs; rows without one stay
    plain `[CLS] text [SEP]`, exactly what `encode_texts` embeds, so an article's vector and its sentiment
    come from one forward pass (`embed_and_predict`).
    """
    texts = frame["text"].astype(str).tolist()
    targets = ([t if isinstance(t, str) and t else None for t in frame["target"]] if pair_input and "target" in frame
               else [None] * len(texts))
    paired = [i for i, t in enumerate(targets) if t is not None]
    single = [i for i, t in enumerate(targets) if t is None]
    input_ids: list[list[int]] = [[] for _ in texts]
    token_types: list[list[int]] = [[] for _ in texts]
    for rows, enc in (
        (paired, tokenizer([targets[i] for i in paired], [texts[i] for i in paired], truncation="only_second",
                           max_length=max_length) if paired else None),
        (single, tokenizer([texts[i] for i in single], truncation=True, max_length=max_length) if single else None),
    ):
        for k, i in enumerate(rows):
            input_ids[i] = enc["input_ids"][k]
            token_types[i] = enc["token_type_ids"][k] if "token_type_ids" in enc else [0] * len(input_ids[i])
    has_types = "token_type_ids" in tokenizer.model_input_names
    label_ids = torch.tensor([labels.index(label) if isinstance(label, str) else -1 for label in frame["label"]],
                             dtype=torch.long)
    weights = frame["weight"].astype(float).fillna(1.0).to_numpy() if "weight" in frame else np.ones(len(frame))
    return Encoded(input_ids, token_types if has_types else None, label_ids, torch.tensor(weights, dtype=torch.float32),
                   soft_targets(frame, labels, label_ids))


def soft_targets(frame: pd.DataFrame, labels: Sequence[str], label_ids: torch.Tensor) -> torch.Tensor | None:
    """The teacher's probabilities as `(n, n_labels)`, or None when `frame` has no soft_<label> columns.

    Rows with a label but no teacher probabilities get the one-hot label, so their soft loss equals the hard one.
    """
    columns = soft_columns(labels)
    if not all(c in frame for c in columns):
        return None
    soft = torch.tensor(frame[columns].astype(float).to_numpy(), dtype=torch.float32)
    missing = torch.isnan(soft).any(1)
    if missing.any():
        soft[missing] = torch.nn.functional.one_hot(label_ids[missing].clamp(min=0), len(labels)).float()
    return soft / soft.sum(1, keepdim=True)


def example_losses(logits: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor | None,
                   hard_weight: float) -> torch.Tensor:
    """Per-example loss: cross-entropy with the label, mixed with cross-entropy against the teacher's soft targets.

    With soft targets, a labelled row costs `hard_weight * CE(label) + (1 - hard_weight) * CE(soft)` and an
    unlabelled row (label -1) costs `CE(soft)` alone (Hinton et al. 2015, with the teacher's temperature
    applied when the soft targets were made).

    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    >>> soft = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    >>> [round(x, 4) for x in example_losses(logits, torch.tensor([0, -1]), soft, 0.5).tolist()]
    [0.1269, 0.6931]
    """
    log_p = torch.nn.functional.log_softmax(logits.float(), dim=1)
    hard = -log_p.gather(1, labels.clamp(min=0).unsqueeze(1)).squeeze(1)
    if soft is None:
        return hard
    soft_loss = -(soft * log_p).sum(1)
    return torch.where(labels >= 0, hard_weight * hard + (1 - hard_weight) * soft_loss, soft_loss)


def bucketed_batches(lengths: Sequence[int], *, batch_size: int, rng: random.Random | None) -> list[list[int]]:
    """Batches of indices with similar lengths, so dynamic padding pads little.

    With `rng`, indices are shuffled, sorted by length inside windows of 50 batches, and the batches
    shuffled again (training). Without it, one length-sorted pass (evaluation).
    """
    order = list(range(len(lengths)))
    if rng is None:
        order.sort(key=lambda i: lengths[i])
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(order)
    window = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(encoded: Encoded, indices: list[int], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Pad one batch to its longest member and move it to `device`."""
    width = max(len(encoded.input_ids[i]) for i in indices)
    ids = torch.full((len(indices), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(indices), width), dtype=torch.long)
    types = torch.zeros((len(indices), width), dtype=torch.long) if encoded.token_type_ids is not None else None
    for row, i in enumerate(indices):
        n = len(encoded.input_ids[i])
        ids[row, :n] = torch.tensor(encoded.input_ids[i])
        mask[row, :n] = 1
        if types is not None:
            types[row, :n] = torch.tensor(encoded.token_type_ids[i])
    batch = {"input_ids": ids, "attention_mask": mask}
    if types is not None:
        batch["token_type_ids"] = types
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def make_optimizer(model, *, learning_rate: float, weight_decay: float, warmup_ratio: float, total_steps: int, device: torch.device):
    """AdamW (fused on CUDA) with linear warm-up then linear decay to zero."""
    from transformers import get_linear_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay, fused=device.type == "cuda")
    warmup = math.ceil(warmup_ratio * total_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total_steps)


def check_schedule(*, epochs: int, grad_accum: int, patience: int) -> None:
    """Epoch, accumulation and patience counts must be at least 1 (0 epochs would save the untrained head)."""
    for name, value in (("epochs", epochs), ("grad_accum", grad_accum), ("patience", patience)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}")


def optimizer_steps(n_batches: int, grad_accum: int) -> int:
    """Optimiser steps in an epoch of `n_batches`: one per `grad_accum` batches, plus one for a partial rest."""
    return math.ceil(n_batches / grad_accum)


def accumulation_size(step: int, n_batches: int, grad_accum: int) -> int:
    """How many batches the optimiser step that batch `step` (0-based) belongs to averages over.

    Every group holds `grad_accum` batches except a shorter last one, whose loss must be averaged over its
    own size, not `grad_accum`, or its update would be too small."""
    return min(grad_accum, n_batches - (step // grad_accum) * grad_accum)


def is_update_step(step: int, n_batches: int, grad_accum: int) -> bool:
    """True after the last batch of each accumulation group (never after the first of a group of two or more)."""
    return (step + 1) % grad_accum == 0 or step + 1 == n_batches


def restore_trainable(model, state: dict[str, torch.Tensor]) -> None:
    """Load `state` (trainable weights from `named_parameters`) back into `model`, checking every key matched.

    `strict=False` because the frozen base weights are not in `state`; a key of `state` the model lacks, or a
    trainable weight missing from `state`, would otherwise leave the model silently not at the best epoch."""
    result = model.load_state_dict(state, strict=False)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    missing = sorted(trainable & set(result.missing_keys))
    if result.unexpected_keys or missing:
        raise RuntimeError(f"restoring the best epoch's weights failed: unexpected keys {result.unexpected_keys[:5]}, "
                           f"trainable weights not restored {missing[:5]}")


PRECISIONS = ("auto", "fp32", "bf16")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")


def autocast(device: torch.device, precision: str = "auto"):
    """bf16 autocast on CUDA by default (`auto`); on the CPU only with `precision="bf16"`.

    bf16 keeps fp32's exponent range, so no loss scaling is needed. On the CPU it pays only where the CPU has
    AVX-512 BF16 or AMX (benchmarks/train_speed.py --precision measures both speed and validation macro-F1);
    on AVX2-only CPUs autocast slows LoRA down, hence opt-in. The weights and optimiser stay fp32 either way."""
    check_precision(precision)
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def train_one_epoch(model, encoded: Encoded, batches: list[list[int]], optimizer, scheduler, *, pad_id: int,
                    device: torch.device, grad_accum: int, progress: bool, hard_weight: float = 1.0,
                    precision: str = "auto") -> float:
    """One pass over `batches`; returns the mean (weighted) training loss."""
    from tqdm.auto import tqdm

    model.train()
    total = torch.zeros((), device=device)  # accumulated on device: no .item() sync per step
    for step, indices in enumerate(tqdm(batches, desc="train", disable=not progress, leave=False)):
        batch = collate(encoded, indices, pad_id, device)
        labels = encoded.labels[indices].to(device)
        weights = encoded.weights[indices].to(device)
        with autocast(device, precision):
            logits = model(**batch).logits
        soft = encoded.soft[indices].to(device) if encoded.soft is not None else None
        losses = example_losses(logits, labels, soft, hard_weight)
        loss = (losses * weights).sum() / weights.sum()
        (loss / accumulation_size(step, len(batches), grad_accum)).backward()
        total += loss.detach()
        if is_update_step(step, len(batches), grad_accum):
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
    return float(total) / max(len(batches), 1)


@torch.inference_mode()
def predict_logits(model, encoded: Encoded, *, batch_size: int, pad_id: int, device: torch.device,
                   precision: str = "auto", progress: str | None = None) -> np.ndarray:
    """Logits `(n, n_labels)` in the input order, computed on length-sorted batches (a progress bar titled
    `progress` when given)."""
    from tqdm.auto import tqdm

    model.eval()
    out = np.zeros((len(encoded.input_ids), model.config.num_labels), dtype=np.float32)
    batches = bucketed_batches([len(x) for x in encoded.input_ids], batch_size=batch_size, rng=None)
    for indices in tqdm(batches, desc=progress, disable=progress is None, leave=False):
        with autocast(device, precision):
            logits = model(**collate(encoded, indices, pad_id, device)).logits
        out[indices] = logits.float().cpu().numpy()
    return out


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, labels=list(range(n_labels)), average="macro", zero_division=0))


def train_adapter(
    examples: pd.DataFrame,
    *,
    base_model: str,
    out_dir: str | Path,
    num_layers: int | None,
    lora_r: int,
    lora_alpha: int,
    lora_dropout: float,
    target_modules: Sequence[str],
    max_length: int,
    learning_rate: float,
    weight_decay: float,
    warmup_ratio: float,
    epochs: int,
    batch_size: int,
    grad_accum: int,
    patience: int,
    seed: int,
    device: str,
    precision: str,
    labels: Sequence[str] = SENTIMENT_LABELS,
    distill_hard_weight: float | None = None,
    log_metrics: MetricsLogger = ignore_metrics,
    progress: bool = False,
) -> TrainResult:
    """Fine-tune a LoRA adapter on `examples` and save the best epoch's adapter in `out_dir`.

    `examples` has columns text, label, split ("train"/"val"; other rows are ignored) and optionally
    target (pair input) and weight (per-example loss weight, e.g. annotator agreement). The best epoch
    is chosen by validation macro-F1; training stops after `patience` epochs without improvement.
    With soft_<label> columns (a teacher's probabilities, see `distillation`), train rows may lack a label and the
    loss mixes label and teacher by `distill_hard_weight` (required then: it has no default, as it changes the result);
    validation always scores against human labels.
    """
    labels = list(labels)
    check_precision(precision)  # before the model loads
    check_examples(examples, labels=labels)
    check_schedule(epochs=epochs, grad_accum=grad_accum, patience=patience)
    distilling = any(c in examples for c in soft_columns(labels))
    if distilling and distill_hard_weight is None:
        raise ValueError(f"examples carry a teacher's probabilities ({soft_columns(labels)}) but distill_hard_weight "
                         "is None; pass the weight of the human label against the teacher (0..1), e.g. the "
                         "student_adapter config's hard_weight")
    set_seed(seed)
    dev = modeling.resolve_device(device)
    tokenizer = modeling.load_tokenizer(base_model)
    model = modeling.load_classifier(base_model, labels=labels, num_layers=num_layers)
    model = modeling.add_lora(model, lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                              target_modules=target_modules).to(dev)
    trainable, total = modeling.count_parameters(model)
    pair_input = "target" in examples and examples["target"].notna().any()
    encode = dict(labels=labels, max_length=max_length, pair_input=pair_input)
    train = encode_examples(examples[examples["split"] == "train"], tokenizer, **encode)
    val = encode_examples(examples[examples["split"] == "val"], tokenizer, **encode)
    rng = random.Random(seed)
    steps_per_epoch = optimizer_steps(math.ceil(len(train.input_ids) / batch_size), grad_accum)
    optimizer, scheduler = make_optimizer(model, learning_rate=learning_rate, weight_decay=weight_decay,
                                          warmup_ratio=warmup_ratio, total_steps=epochs * steps_per_epoch, device=dev)
    logger.info("Running training: %d train / %d val examples, %d epochs, batch %d x %d, %d optimisation steps, "
                "%d of %d parameters trainable, device %s", len(train.input_ids), len(val.input_ids), epochs,
                batch_size, grad_accum, epochs * steps_per_epoch, trainable, total, dev)
    pad_id = tokenizer.pad_token_id
    train_lengths = [len(x) for x in train.input_ids]
    best = (-1.0, -1, None)  # (val macro-F1, epoch, trainable state)
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    for epoch in range(epochs):
        batches = bucketed_batches(train_lengths, batch_size=batch_size, rng=rng)
        train_loss = train_one_epoch(model, train, batches, optimizer, scheduler, pad_id=pad_id, device=dev,
                                     grad_accum=grad_accum, progress=progress,
                                     hard_weight=distill_hard_weight if distilling else 1.0,
                                     precision=precision)
        val_pred = predict_logits(model, val, batch_size=batch_size * 2, pad_id=pad_id, device=dev,
                                  precision=precision).argmax(1)
        metrics = {"train_loss": train_loss, "val_macro_f1": macro_f1(val.labels.numpy(), val_pred, len(labels)),
                   "val_accuracy": float((val_pred == val.labels.numpy()).mean()), "learning_rate": scheduler.get_last_lr()[0]}
        history.append({"epoch": epoch, **metrics})
        log_metrics(metrics, epoch)
        logger.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in metrics.items()})
        if metrics["val_macro_f1"] > best[0]:
            state = {k: v.detach().cpu().clone() for k, v in model.named_parameters() if v.requires_grad}
            best = (metrics["val_macro_f1"], epoch, state)
        elif epoch - best[1] >= patience:
            logger.info("early stop: no val macro-F1 gain for %d epochs (best epoch %d)", patience, best[1])
            break
    seconds = time.perf_counter() - started
    restore_trainable(model, best[2])  # back to the best epoch's adapter and head
    save_adapter(model, tokenizer, out_dir, modeling.AdapterManifest(
        base_model=base_model, labels=labels, num_layers=num_layers, max_length=max_length, pair_input=bool(pair_input)))
    return TrainResult(out_dir=str(out_dir), trainable_params=trainable, total_params=total, best_epoch=best[1],
                       best_val_macro_f1=best[0], history=history, train_seconds=seconds,
                       samples_per_second=len(train.input_ids) * len(history) / max(seconds, 1e-9), device=str(dev))


def save_adapter(model, tokenizer, out_dir: str | Path, manifest: modeling.AdapterManifest) -> None:
    """Adapter + head weights (peft), tokenizer and the manifest that says how to rebuild the model."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    manifest.save(out_dir)


def predict_proba(model, tokenizer, frame: pd.DataFrame, *, manifest: modeling.AdapterManifest, batch_size: int,
                  device: str = "cpu") -> np.ndarray:
    """Class probabilities `(n, n_labels)` for rows with text (and target, when the adapter uses pairs)."""
    dev = modeling.resolve_device(device)
    frame = frame.assign(label=manifest.labels[0])  # encode_examples wants a label; it is not used here
    encoded = encode_examples(frame, tokenizer, labels=manifest.labels, max_length=manifest.max_length,
                              pair_input=manifest.pair_input)
    logits = predict_logits(model, encoded, batch_size=batch_size, pad_id=tokenizer.pad_token_id, device=dev)
    return torch.softmax(torch.from_numpy(logits), dim=1).numpy()


