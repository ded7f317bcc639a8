import pandas as pd
import pytest
import torch

from opensentiment_pipeline.core.model import modeling, training
from opensentiment_pipeline.core.schema import SENTIMENT_LABELS

WORDS = {
    "positive": ["record profit lifts shares", "team wins the cup", "park opens to cheers", "wages rise again"],
    "negative": ["factory closes, jobs lost", "flood destroys homes", "company posts heavy loss", "crash kills two"],
    "neutral": ["council meets on tuesday", "report published today", "minister visits town", "bus timetable released"],
}
SETTINGS = dict(base_model="packaged:all-MiniLM-L6-v2", num_layers=None, lora_r=4, lora_alpha=8, lora_dropout=0.0,
                target_modules=["query", "value"], max_length=32, learning_rate=1e-2, weight_decay=0.0,
                warmup_ratio=0.0, batch_size=8, grad_accum=1, patience=10, seed=3, device="cpu",
            precision="auto")


@pytest.fixture(scope="module")
def toy_examples() -> pd.DataFrame:
    rows = [(f"{text} ({i})", label) for label, texts in WORDS.items() for text in texts for i in range(6)]
    frame = pd.DataFrame(rows, columns=["text", "label"])
    frame["split"] = ["val" if i % 6 == 0 else "train" for i in range(len(frame))]
    return frame


@pytest.fixture(scope="module")
def trained(toy_examples, tmp_path_factory):
    out = tmp_path_factory.mktemp("adapter")
    history: list[tuple[dict, int]] = []
    result = training.train_adapter(toy_examples, out_dir=out, epochs=3,
                                    log_metrics=lambda m, step: history.append((dict(m), step)), **SETTINGS)
    return out, result, history


def test_loss_falls_and_each_epoch_is_logged_with_its_step(trained):
    _, result, history = trained
    assert [step for _, step in history] == list(range(3))
    losses = [metrics["train_loss"] for metrics, _ in history]
    assert losses[-1] < 0.7 * losses[0]
    assert result.best_val_macro_f1 == max(m["val_macro_f1"] for m, _ in history)


def test_only_lora_and_head_weights_train():
    model = modeling.load_classifier("packaged:all-MiniLM-L6-v2", labels=SENTIMENT_LABELS, num_layers=1)
    model = modeling.add_lora(model, lora_r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["query", "value"])
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable, "nothing trains"
    assert all("lora_" in name or "classifier" in name for name in trainable), trainable
    assert any("classifier" in name for name in trainable)
    trainable_count, total = modeling.count_parameters(model)
    assert trainable_count == sum(p.numel() for n, p in model.named_parameters() if n in trainable) < total


def test_saved_adapter_reloads_with_identical_logits(trained, toy_examples):
    out, result, _ = trained
    manifest, tokenizer, model = modeling.load_adapter(out)
    assert manifest.labels == list(SENTIMENT_LABELS) and manifest.num_layers is None
    first = training.predict_proba(model, tokenizer, toy_examples, manifest=manifest, batch_size=16)
    _, tokenizer2, model2 = modeling.load_adapter(out)
    second = training.predict_proba(model2, tokenizer2, toy_examples, manifest=manifest, batch_size=5)
    assert torch.allclose(torch.from_numpy(first), torch.from_numpy(second), atol=1e-6)
    accuracy = (first.argmax(1) == toy_examples["label"].map(list(SENTIMENT_LABELS).index)).mean()
    assert accuracy > 0.9  # the toy set is separable: the adapter must have learnt it


def test_training_is_deterministic_under_a_fixed_seed(toy_examples, tmp_path):
    runs = [training.train_adapter(toy_examples, out_dir=tmp_path / str(i), epochs=1, **SETTINGS) for i in range(2)]
    assert runs[0].history[0]["train_loss"] == runs[1].history[0]["train_loss"]


def test_bucketed_batches_cover_every_index_once_and_group_lengths():
    lengths = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10]
    eval_batches = training.bucketed_batches(lengths, batch_size=3, rng=None)
    assert [[lengths[i] for i in b] for b in eval_batches] == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]
    import random

    train_batches = training.bucketed_batches(lengths, batch_size=3, rng=random.Random(0))
    assert sorted(i for b in train_batches for i in b) == list(range(10))


def test_unknown_label_and_missing_split_are_named(toy_examples, tmp_path):
    with pytest.raises(ValueError, match=r"unknown labels \['joyful'\]"):
        training.train_adapter(toy_examples.assign(label="joyful"), out_dir=tmp_path, epochs=1, **SETTINGS)
    with pytest.raises(ValueError, match=r"no 'val' rows"):
        training.train_adapter(toy_examples.assign(split="train"), out_dir=tmp_path, epochs=1, **SETTINGS)


def test_unknown_target_module_lists_the_linear_modules():
    model = modeling.load_classifier("packaged:all-MiniLM-L6-v2", labels=SENTIMENT_LABELS, num_layers=1)
    with pytest.raises(ValueError, match=r"target_modules \['q_lin'\].*'query'"):
        modeling.add_lora(model, lora_r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_lin"])


def test_one_pass_embedding_and_sentiment_match_the_two_separate_passes(trained, toy_examples):
    from opensentiment_pipeline.core.vectors import encoding

    out, _, _ = trained
    manifest, tokenizer, model = modeling.load_adapter(out)
    texts = toy_examples["text"].tolist()
    vectors, proba = encoding.embed_and_predict(model, tokenizer, texts, labels=manifest.labels, batch_size=7,
                                                max_length=manifest.max_length, device="cpu")
    separate_vectors = encoding.encode_texts(modeling.encoder_of(model), tokenizer, texts, batch_size=16,
                                               max_length=manifest.max_length, device="cpu")
    separate_proba = training.predict_proba(model, tokenizer, toy_examples, manifest=manifest, batch_size=16)
    assert vectors.shape == (len(texts), 384)
    assert abs(vectors - separate_vectors).max() < 1e-5
    assert abs(proba - separate_proba).max() < 1e-5


def test_pair_input_pairs_only_rows_with_a_target():
    tokenizer = modeling.load_tokenizer("packaged:all-MiniLM-L6-v2")
    frame = pd.DataFrame({"text": ["Shares fell.", "Rain today."], "target": ["Acme", None],
                          "label": ["negative", "neutral"]})
    encoded = training.encode_examples(frame, tokenizer, labels=SENTIMENT_LABELS, max_length=32, pair_input=True)
    assert tokenizer.decode(encoded.input_ids[0]) == "[CLS] acme [SEP] shares fell. [SEP]"
    assert encoded.token_type_ids[0] == tokenizer("Acme", "Shares fell.")["token_type_ids"]
    assert set(encoded.token_type_ids[0]) == {0, 1}
    assert encoded.input_ids[1] == tokenizer("Rain today.")["input_ids"]  # what encode_texts embeds
    assert set(encoded.token_type_ids[1]) == {0}


def test_cpu_bf16_autocast_trains_in_bf16_and_keeps_fp32_weights(toy_examples, tmp_path):
    seen: list[torch.dtype] = []
    model = modeling.load_classifier("packaged:all-MiniLM-L6-v2", labels=SENTIMENT_LABELS, num_layers=1)
    hook = model.classifier.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    with training.autocast(torch.device("cpu"), "bf16"):
        model(input_ids=torch.tensor([[101, 2000, 102]]), attention_mask=torch.ones(1, 3, dtype=torch.long))
    with training.autocast(torch.device("cpu"), "auto"):  # auto stays fp32 on the CPU
        model(input_ids=torch.tensor([[101, 2000, 102]]), attention_mask=torch.ones(1, 3, dtype=torch.long))
    hook.remove()
    assert seen == [torch.bfloat16, torch.float32]
    result = training.train_adapter(toy_examples, out_dir=tmp_path, epochs=3, **{**SETTINGS, "precision": "bf16"})
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.7 * losses[0]  # it learns the toy set as fp32 does
    _, _, reloaded = modeling.load_adapter(tmp_path)
    assert all(p.dtype == torch.float32 for p in reloaded.parameters())


def test_unknown_precision_is_refused_before_the_model_loads(toy_examples, tmp_path):
    with pytest.raises(ValueError, match=r"precision must be one of \('auto', 'fp32', 'bf16'\); got 'fp16'"):
        training.train_adapter(toy_examples, out_dir=tmp_path, epochs=1, **{**SETTINGS, "precision": "fp16"})
