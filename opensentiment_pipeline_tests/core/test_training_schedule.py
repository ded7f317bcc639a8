"""Training logic: gradient accumulation, early stopping, best-epoch restore and the epochs=0 edge case."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from opensentiment_pipeline.core.model import modeling, training
from opensentiment_pipeline_tests.core.test_training import WORDS

# One encoder layer: these tests are about the loop, not about what the model learns.
TINY = dict(base_model="packaged:all-MiniLM-L6-v2", num_layers=1, lora_r=2, lora_alpha=4, lora_dropout=0.0,
            target_modules=["query", "value"], max_length=16, learning_rate=1e-2, weight_decay=0.0,
            warmup_ratio=0.0, batch_size=8, grad_accum=1, patience=10, seed=3, device="cpu",
            precision="auto")


@pytest.fixture(scope="module")
def examples() -> pd.DataFrame:
    rows = [(f"{text} ({i})", label) for label, texts in WORDS.items() for text in texts for i in range(5)]
    frame = pd.DataFrame(rows, columns=["text", "label"])
    frame["split"] = ["val" if i % 5 == 0 else "train" for i in range(len(frame))]  # 48 train rows, 12 val
    return frame


@pytest.mark.parametrize("n_batches, grad_accum, updates_after, sizes", [
    (5, 2, [1, 3, 4], [2, 2, 2, 2, 1]),
    (6, 3, [2, 5], [3, 3, 3, 3, 3, 3]),
    (4, 1, [0, 1, 2, 3], [1, 1, 1, 1]),
    (2, 4, [1], [2, 2]),
])
def test_accumulation_groups_and_the_partial_last_group(n_batches, grad_accum, updates_after, sizes):
    assert [s for s in range(n_batches) if training.is_update_step(s, n_batches, grad_accum)] == updates_after
    assert training.optimizer_steps(n_batches, grad_accum) == len(updates_after)
    assert [training.accumulation_size(s, n_batches, grad_accum) for s in range(n_batches)] == sizes


class _BagOfTokens(torch.nn.Module):
    """Mean of token embeddings -> logits: a model small enough to check gradients exactly."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(10, 3)

    def forward(self, input_ids, attention_mask):
        mask = attention_mask.unsqueeze(-1).float()
        return SimpleNamespace(logits=(self.embed(input_ids) * mask).sum(1) / mask.sum(1))


class _Recorder:
    """Stands in for the optimiser and the scheduler: records the gradient at every step instead of stepping."""

    def __init__(self, model):
        self.model, self.grads, self.scheduler_steps = model, [], 0

    def step(self):
        self.grads.append(self.model.embed.weight.grad.clone())

    def zero_grad(self, set_to_none=True):
        self.model.zero_grad(set_to_none=set_to_none)


def test_every_optimiser_step_averages_its_own_group_including_a_partial_last_one():
    # Five identical batches with grad_accum 2: steps after batches 2, 4 and 5. Each step's gradient is the
    # mean over its group, so all three must equal one batch's gradient, the one-batch last group included.
    encoded = training.Encoded(input_ids=[[1, 2, 3], [4, 5]] * 5, token_type_ids=None,
                               labels=torch.tensor([0, 2] * 5), weights=torch.ones(10))
    batches = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    model = _BagOfTokens()
    recorder = _Recorder(model)
    scheduler = SimpleNamespace(step=lambda: setattr(recorder, "scheduler_steps", recorder.scheduler_steps + 1))
    training.train_one_epoch(model, encoded, batches, recorder, scheduler, pad_id=0, device=torch.device("cpu"),
                             grad_accum=2, progress=False)
    assert len(recorder.grads) == recorder.scheduler_steps == training.optimizer_steps(5, 2) == 3
    single = _BagOfTokens()
    loss = torch.nn.functional.cross_entropy(
        single(**training.collate(encoded, [0, 1], 0, torch.device("cpu"))).logits, encoded.labels[[0, 1]])
    loss.backward()
    for grad in recorder.grads:
        torch.testing.assert_close(grad, single.embed.weight.grad)


def test_the_schedule_takes_exactly_the_counted_steps_with_grad_accum(examples, tmp_path):
    # 48 train rows / batch 8 = 6 batches; grad_accum 4 -> 2 steps an epoch (4 + a partial 2), 4 in all.
    # Linear decay without warm-up: the learning rate is halfway after epoch 1 and exactly 0 after epoch 2.
    result = training.train_adapter(examples, out_dir=tmp_path, **{**TINY, "grad_accum": 4, "epochs": 2})
    assert [h["learning_rate"] for h in result.history] == [pytest.approx(0.5e-2), 0.0]


def test_early_stopping_after_patience_epochs_without_gain(examples, tmp_path):
    # Learning rate 0: nothing changes, so validation macro-F1 never beats epoch 0.
    result = training.train_adapter(examples, out_dir=tmp_path, **{**TINY, "learning_rate": 0.0, "epochs": 10,
                                                                   "patience": 2})
    assert [h["epoch"] for h in result.history] == [0, 1, 2]
    assert result.best_epoch == 0
    assert len({h["val_macro_f1"] for h in result.history}) == 1


def test_the_saved_adapter_holds_the_best_epochs_weights_not_the_last(examples, tmp_path, monkeypatch):
    models, snapshots = [], []
    add_lora = modeling.add_lora
    monkeypatch.setattr(modeling, "add_lora", lambda *a, **k: models.append(add_lora(*a, **k)) or models[-1])
    scores = iter([0.5, 0.9, 0.6, 0.7])  # epoch 1 is the best, and not the last

    def scripted_macro_f1(y_true, y_pred, n_labels):
        snapshots.append({n: p.detach().clone() for n, p in models[0].named_parameters() if p.requires_grad})
        return next(scores)

    monkeypatch.setattr(training, "macro_f1", scripted_macro_f1)
    result = training.train_adapter(examples, out_dir=tmp_path, **{**TINY, "epochs": 4})
    assert (result.best_epoch, result.best_val_macro_f1, len(result.history)) == (1, 0.9, 4)
    _, _, reloaded = modeling.load_adapter(tmp_path)
    saved = dict(reloaded.named_parameters())
    assert set(snapshots[1]) <= set(saved)
    for name, weight in snapshots[1].items():
        torch.testing.assert_close(saved[name], weight)
    assert any(not torch.equal(saved[n], w) for n, w in snapshots[3].items())  # the last epoch differed


def test_restore_refuses_unexpected_keys_and_unrestored_trainable_weights():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    model[0].requires_grad_(False)
    best = {n: p.detach() + 1 for n, p in model.named_parameters() if p.requires_grad}
    training.restore_trainable(model, best)
    torch.testing.assert_close(model[1].weight.detach(), best["1.weight"])
    with pytest.raises(RuntimeError, match=r"unexpected keys \['2.weight'\]"):
        training.restore_trainable(model, {**best, "2.weight": torch.zeros(1, 2)})
    with pytest.raises(RuntimeError, match=r"trainable weights not restored \['1.bias'\]"):
        training.restore_trainable(model, {"1.weight": best["1.weight"]})


@pytest.mark.parametrize("field, value", [("epochs", 0), ("grad_accum", 0), ("patience", 0), ("epochs", -1)])
def test_zero_epochs_accumulation_or_patience_is_a_clear_error(examples, tmp_path, field, value):
    with pytest.raises(ValueError, match=rf"^{field} must be an integer >= 1; got {value}$"):
        training.train_adapter(examples, out_dir=tmp_path, **{**TINY, "epochs": 1, field: value})
    assert not any(tmp_path.iterdir())  # refused before anything was built or saved
