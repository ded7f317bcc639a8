"""A leaning projection of article vectors that is trained not to know the outlet (adversarial media adaptation).

A probe trained on article leanings, where every article inherits its outlet's rating, can learn to recognise
outlets (house style, recurring topics) instead of ideology: that holds on the outlets it saw and fails on new
ones. Following Baly et al. (EMNLP 2020, "media adaptation"), a small network maps each vector to a
representation `z`; a leaning head reads `z`, and an outlet classifier reads `z` through a gradient-reversal
layer, so `z` is pushed to carry leaning while the outlet becomes unpredictable from it
(Ganin & Lempitsky 2015).

It trains on frozen vectors (mean-pooled encoder output), which costs seconds on a CPU; the same heads can sit
on a LoRA-tuned encoder where a GPU is available.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from opensentiment_pipeline.core.analysis.leaning import LEANINGS

logger = logging.getLogger(__name__)



class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.weight * grad, None


def reverse_gradient(x: torch.Tensor, weight: float) -> torch.Tensor:
    """Identity forward; the gradient flowing back is multiplied by -`weight`.

    >>> x = torch.ones(2, requires_grad=True)
    >>> reverse_gradient(x, 0.5).sum().backward()
    >>> x.grad.tolist()
    [-0.5, -0.5]
    """
    return _ReverseGradient.apply(x, weight)


class LeaningProjection(nn.Module):
    """vector (d) -> z (hidden) -> leaning logits (3); z -> reversed gradient -> outlet logits (n_outlets)."""

    def __init__(self, dimensions: int, hidden: int, n_outlets: int, dropout: float):
        super().__init__()
        self.encode = nn.Sequential(nn.Dropout(dropout), nn.Linear(dimensions, hidden), nn.GELU())
        self.leaning = nn.Linear(hidden, len(LEANINGS))
        self.outlet = nn.Linear(hidden, n_outlets)

    def forward(self, x: torch.Tensor, adversary_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)  # (batch, hidden)
        return self.leaning(z), self.outlet(reverse_gradient(z, adversary_weight))


@dataclass(frozen=True)
class ProjectionResult:
    model: LeaningProjection
    final_leaning_loss: float
    final_outlet_accuracy: float  # of the adversary on the training articles: lower = less outlet identity left

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        """`(n, 3)` leaning probabilities in LEANINGS order."""
        self.model.eval()
        with torch.no_grad():
            logits, _ = self.model(torch.as_tensor(np.asarray(vectors), dtype=torch.float32))
        return torch.softmax(logits, dim=1).numpy()


def train_leaning_projection(vectors: np.ndarray, labels: np.ndarray, outlets: np.ndarray, *, hidden: int,
                             adversary_weight: float, epochs: int, learning_rate: float, weight_decay: float,
                             dropout: float, batch_size: int, seed: int) -> ProjectionResult:
    """Fit a `LeaningProjection` on article `vectors` `(n, d)` with leaning `labels` (LEANINGS strings) and
    `outlets` (any ids).

    Leaning classes are weighted inversely to their frequency, and so are outlets in the leaning loss, so a
    large outlet does not dominate what "left" means. `adversary_weight` 0 trains the same network without the
    adversary (the ablation). The adversary's weight ramps up over training as in Ganin & Lempitsky (2015).
    """
    x = np.asarray(vectors, dtype=np.float32)
    labels = np.asarray(labels)
    unknown = sorted(set(labels) - set(LEANINGS))
    if unknown:
        raise ValueError(f"unknown leanings {unknown}; expected a subset of {list(LEANINGS)}")
    if x.ndim != 2 or len(x) != len(labels) or len(labels) != len(outlets):
        raise ValueError(f"vectors (n, d), labels (n) and outlets (n) must align; got {x.shape}, {len(labels)} "
                         f"and {len(outlets)}")
    if adversary_weight < 0 or epochs < 1:
        raise ValueError(f"adversary_weight must be >= 0 and epochs >= 1; got {adversary_weight} and {epochs}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    y = torch.as_tensor([LEANINGS.index(v) for v in labels])
    outlet_ids, outlet_index = np.unique(np.asarray(outlets, dtype=str), return_inverse=True)
    o = torch.as_tensor(outlet_index)
    # Each article weighs 1 / (its outlet's size), and the classes are balanced on top.
    weight = 1.0 / np.bincount(outlet_index)[outlet_index]
    for c in range(len(LEANINGS)):
        mask = y.numpy() == c
        if mask.any():
            weight[mask] /= weight[mask].sum()
    weight = torch.as_tensor(weight / weight.mean(), dtype=torch.float32)
    model = LeaningProjection(x.shape[1], hidden, len(outlet_ids), dropout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    features = torch.as_tensor(x)
    steps, total = 0, epochs * int(np.ceil(len(x) / batch_size))
    leaning_loss = outlet_accuracy = float("nan")
    for _ in range(epochs):
        model.train()
        order = rng.permutation(len(x))
        losses, hits = [], 0
        for start in range(0, len(x), batch_size):
            batch = torch.as_tensor(order[start:start + batch_size])
            ramp = 2.0 / (1.0 + np.exp(-10.0 * steps / max(total, 1))) - 1.0  # 0 -> 1 over training
            leaning_logits, outlet_logits = model(features[batch], adversary_weight * ramp)
            per_article = nn.functional.cross_entropy(leaning_logits, y[batch], reduction="none")
            loss_leaning = (per_article * weight[batch]).mean()
            loss_outlet = nn.functional.cross_entropy(outlet_logits, o[batch])
            # The adversary always trains, so its accuracy measures the outlet identity left in z; only with
            # adversary_weight > 0 does its reversed gradient reach the encoder.
            loss = loss_leaning + loss_outlet
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            losses.append(float(loss_leaning.detach()))
            hits += int((outlet_logits.argmax(dim=1) == o[batch]).sum())
        leaning_loss, outlet_accuracy = float(np.mean(losses)), hits / len(x)
    logger.info("leaning projection: loss %.3f, adversary outlet accuracy %.3f", leaning_loss, outlet_accuracy)
    return ProjectionResult(model=model.eval(), final_leaning_loss=leaning_loss, final_outlet_accuracy=outlet_accuracy)


def lora_held_out_proba(texts, labels, outlets, folds, *, settings: dict, val_share: float = 0.2, seed: int = 0,
                        batch_size: int = 32, adversary_weight: float = 0.0) -> tuple[np.ndarray, list[dict]]:
    """Held-out `(n, 3)` leaning probabilities from a LoRA adapter fine-tuned on each fold's training outlets.

    Each fold trains `training.train_adapter` with the three leanings as labels (`settings` are its LoRA and
    optimiser settings: base_model, epochs, max_length, ...) and predicts its held-out outlets' articles.
    Against outlet identity, the epoch is chosen on *outlets* the fold's adapter never trained on (`val_share`
    of its training outlets), so an adapter that learns to recognise its outlets rather than their leaning stops
    before it does; classes are weighted to balance, as the linear probe's are. With `adversary_weight` > 0 the
    fold trains `train_adversarial_lora` instead: the same loop with an outlet classifier behind a
    gradient-reversal layer on the pooled vector, so the encoder is pushed to forget which outlet wrote what.

    Args:
        texts, labels, outlets: one entry per rated article (labels in LEANINGS).
        folds: (train rows, test rows) pairs, outlet-disjoint (`leaning.rated_folds`).

    Returns:
        (probabilities in LEANINGS order, one dict per fold: best epoch, its validation macro-F1, seconds).
    """
    import tempfile

    import pandas as pd
    from sklearn.model_selection import GroupShuffleSplit

    from opensentiment_pipeline.core.model import modeling, training

    texts, labels, outlets = (np.asarray(v, dtype=object) for v in (texts, labels, outlets))
    proba = np.zeros((len(texts), len(LEANINGS)))
    history = []
    for k, (train, test) in enumerate(folds):
        if set(outlets[train]) & set(outlets[test]):
            raise ValueError(f"fold {k} is not outlet-disjoint: {sorted(set(outlets[train]) & set(outlets[test]))[:5]}")
        splitter = GroupShuffleSplit(n_splits=1, test_size=val_share, random_state=seed + k)
        _, val_rows = next(splitter.split(train, groups=outlets[train]))
        split = np.full(len(train), "train", dtype=object)
        split[val_rows] = "val"
        fitted = pd.Series(labels[train][split == "train"])
        balance = len(fitted) / (fitted.nunique() * fitted.value_counts())
        examples = pd.DataFrame({"text": texts[train], "label": labels[train], "split": split,
                                 "weight": pd.Series(labels[train]).map(balance).fillna(1.0).to_numpy()})
        extra = {}
        if adversary_weight > 0:
            result, model, tokenizer = train_adversarial_lora(examples, outlets[train], seed=seed,
                                                              adversary_weight=adversary_weight, **settings)
            manifest = modeling.AdapterManifest(base_model=settings["base_model"], labels=list(LEANINGS),
                                                num_layers=settings.get("num_layers"),
                                                max_length=settings["max_length"], pair_input=False)
            proba[test] = training.predict_proba(model, tokenizer, pd.DataFrame({"text": texts[test]}),
                                                 manifest=manifest, batch_size=batch_size,
                                                 device=settings.get("device", "cpu"))
            extra = {"adversary_outlet_accuracy": result.history[result.best_epoch]["adversary_outlet_accuracy"]}
        else:
            with tempfile.TemporaryDirectory() as out:
                result = training.train_adapter(examples, out_dir=out, labels=LEANINGS, seed=seed,
                                                **{"precision": "auto", **settings})
                manifest, tokenizer, model = modeling.load_adapter(out, device=settings.get("device", "cpu"))
                proba[test] = training.predict_proba(model, tokenizer, pd.DataFrame({"text": texts[test]}),
                                                     manifest=manifest, batch_size=batch_size,
                                                     device=settings.get("device", "cpu"))
        history.append({"fold": k, "train_outlets": int(len(set(outlets[train][split == "train"]))),
                        "val_outlets": int(len(set(outlets[train][split == "val"]))), "best_epoch": result.best_epoch,
                        "best_val_macro_f1": result.best_val_macro_f1, "train_seconds": result.train_seconds, **extra})
        logger.info("LoRA leaning fold %d: %s", k, history[-1])
    return proba, history


def dann_ramp(progress: float) -> float:
    """Ganin et al.'s (JMLR 2016) schedule of the reversal weight: 2 / (1 + exp(-10 p)) - 1 for training progress
    p in [0, 1], so 0 at the start and ~1 by the end.

    >>> [round(dann_ramp(p), 3) for p in (0.0, 0.1, 0.5, 1.0)]
    [0.0, 0.462, 0.987, 1.0]
    """
    return 2.0 / (1.0 + float(np.exp(-10.0 * progress))) - 1.0


@dataclass
class AdversarialTrainResult:
    best_epoch: int
    best_val_macro_f1: float
    history: list[dict]
    train_seconds: float


def train_adversarial_lora(examples, train_outlets, *, adversary_weight: float, base_model: str,
                           num_layers: int | None, lora_r: int, lora_alpha: int, lora_dropout: float, target_modules,
                           max_length: int, learning_rate: float, weight_decay: float, warmup_ratio: float, epochs: int,
                           batch_size: int, grad_accum: int, patience: int, seed: int, device: str,
                           precision: str = "auto", **unused) -> tuple[AdversarialTrainResult, nn.Module, object]:
    """`training.train_adapter`'s loop for leaning, plus adversarial media adaptation inside the encoder.

    The LoRA classifier (`modeling.MeanPoolClassifier`) is trained on the leanings of `examples` (columns text,
    label, split, weight, as for `train_adapter`) while a linear outlet classifier reads its pooled vector through
    `reverse_gradient(adversary_weight)`: the outlet head learns to tell the training outlets apart, and the
    encoder's LoRA weights get the opposite gradient, so the pooled vector keeps leaning and loses outlet
    identity (Baly et al. 2020; Ganin & Lempitsky 2015). `train_outlets` names the outlet of each row of
    `examples`. The reversed gradient grows from 0 to `adversary_weight` over training (`dann_ramp`), so the
    leaning head learns before the adversary pushes back: at full weight from the first step the encoder
    collapsed to one class (benchmarks/RESULTS.md, "Bias axis"). The epoch is chosen by validation macro-F1, as in
    `train_adapter`, on the "val" rows (outlets the fold does not train on).

    Returns:
        (epochs' history with the adversary's training outlet accuracy, the model at its best epoch, tokenizer).
    """
    import time

    from opensentiment_pipeline.core.model import modeling, training
    from opensentiment_pipeline.core.model.modeling import resolve_device

    if adversary_weight <= 0:
        raise ValueError(f"adversary_weight must be > 0 (0 is train_adapter); got {adversary_weight}")
    training.check_schedule(epochs=epochs, grad_accum=grad_accum, patience=patience)
    training.set_seed(seed)
    dev = resolve_device(device)
    labels = list(LEANINGS)
    tokenizer = modeling.load_tokenizer(base_model)
    model = modeling.add_lora(modeling.load_classifier(base_model, labels=labels, num_layers=num_layers),
                              lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                              target_modules=target_modules).to(dev)
    # The pooled vector is what the classifier's dropout receives: catch it there for the adversary.
    classifier = next(m for m in model.modules() if isinstance(m, modeling.MeanPoolClassifier))
    caught: dict[str, torch.Tensor] = {}
    hook = classifier.dropout.register_forward_pre_hook(lambda _module, args: caught.__setitem__("pooled", args[0]))
    is_train = (examples["split"] == "train").to_numpy()
    names = sorted(set(np.asarray(train_outlets)[is_train].tolist()))
    outlet_ids = torch.tensor([names.index(o) for o in np.asarray(train_outlets)[is_train]], dtype=torch.long)
    adversary = nn.Linear(classifier.config.hidden_size, len(names)).to(dev)
    encode = dict(labels=labels, max_length=max_length, pair_input=False)
    train = training.encode_examples(examples[is_train], tokenizer, **encode)
    val = training.encode_examples(examples[examples["split"] == "val"], tokenizer, **encode)
    rng = random.Random(seed)
    steps = training.optimizer_steps(-(-len(train.input_ids) // batch_size), grad_accum)
    both = nn.ModuleList([model, adversary])
    optimizer, scheduler = training.make_optimizer(both, learning_rate=learning_rate, weight_decay=weight_decay,
                                                   warmup_ratio=warmup_ratio, total_steps=epochs * steps, device=dev)
    pad_id, lengths = tokenizer.pad_token_id, [len(x) for x in train.input_ids]
    best, history, started = (-1.0, -1, None), [], time.perf_counter()
    try:
        for epoch in range(epochs):
            both.train()
            batches = training.bucketed_batches(lengths, batch_size=batch_size, rng=rng)
            total, correct = 0.0, 0
            for step, indices in enumerate(batches):
                batch = training.collate(train, indices, pad_id, dev)
                with training.autocast(dev, precision):
                    logits = model(**batch).logits
                weights = train.weights[indices].to(dev)
                lean_loss = (training.example_losses(logits, train.labels[indices].to(dev), None, 1.0) * weights
                             ).sum() / weights.sum()
                progress = (epoch * len(batches) + step) / max(epochs * len(batches), 1)
                outlet_logits = adversary(reverse_gradient(caught["pooled"].float(),
                                                           adversary_weight * dann_ramp(progress)))
                targets = outlet_ids[indices].to(dev)
                loss = lean_loss + nn.functional.cross_entropy(outlet_logits, targets)
                (loss / training.accumulation_size(step, len(batches), grad_accum)).backward()
                total += float(lean_loss.detach())
                correct += int((outlet_logits.argmax(1) == targets).sum())
                if training.is_update_step(step, len(batches), grad_accum):
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
            predicted = training.predict_logits(model, val, batch_size=batch_size * 2, pad_id=pad_id, device=dev,
                                                precision=precision).argmax(1)
            metrics = {"epoch": epoch, "train_loss": total / max(len(batches), 1),
                       "val_macro_f1": training.macro_f1(val.labels.numpy(), predicted, len(labels)),
                       "adversary_outlet_accuracy": correct / max(len(lengths), 1)}
            history.append(metrics)
            logger.info("adversarial LoRA epoch %d: %s", epoch, {k: round(v, 4) for k, v in metrics.items()})
            if metrics["val_macro_f1"] > best[0]:
                state = {k: v.detach().cpu().clone() for k, v in model.named_parameters() if v.requires_grad}
                best = (metrics["val_macro_f1"], epoch, state)
            elif epoch - best[1] >= patience:
                break
    finally:
        hook.remove()
    training.restore_trainable(model, best[2])
    result = AdversarialTrainResult(best_epoch=best[1], best_val_macro_f1=best[0], history=history,
                                    train_seconds=time.perf_counter() - started)
    return result, model.eval(), tokenizer
