"""Training throughput: the project's `train_adapter` loop against what a user would otherwise run, same data.

Two references, side by side in one run:
1. A plain peft loop, as peft's examples write it: `AutoModelForSequenceClassification` +
   `get_peft_model(LoraConfig(task_type="SEQ_CLS", r=8, target_modules=["query","value"], lora_dropout=0.1))`,
   AdamW, every batch padded to `max_length`, fp32 on the CPU (bf16 autocast on CUDA).
2. The Hugging Face `Trainer` with length-grouped batches (`train_sampling_strategy="group_by_length"`, the
   `group_by_length=True` of older releases) and dynamic padding (`DataCollatorWithPadding`), training the
   *same* model as the project (mean-pooled head, the shipped LoRA settings) with the same optimiser settings,
   so only the loop differs. Validation macro-F1 after one epoch is reported for it and for the project.
The project's loop runs with its shipped defaults (SentimentAdapterConfig). Each trains one epoch on the same
real NewsMTSC pairs; the script prints samples/s, the ratios, and the validation macro-F1 of the last two.

    python benchmarks/train_speed.py --n 1024 [--device auto] [--base-model packaged:all-mpnet-base-v2]
        [--precision fp32,bf16] [--trainer-args max_grad_norm=0]
"""

import argparse
import statistics
import tempfile
import time

import pandas as pd
import torch

from opensentiment_pipeline.core.ingest import sources
from opensentiment_pipeline.core.model import modeling, training
from opensentiment_pipeline.core.schema import SENTIMENT_LABELS
from opensentiment_pipeline.defs.assets.model import SentimentAdapterConfig


def load_pairs(path: str, n: int, seed: int) -> pd.DataFrame:
    spec = sources.SourceSpec(name="newsmtsc", format="newsmtsc", path=path, limit=n, seed=seed, split="train")
    return sources.read_source(spec).articles[["text", "target", "label"]].reset_index(drop=True)


def plain_peft_epoch(frame: pd.DataFrame, *, batch_size: int, max_length: int, device: torch.device) -> float:
    """One epoch of the textbook loop; returns samples/s."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = modeling.resolve_model_path("packaged:all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)
    model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.1,
                                             target_modules=["query", "value"])).to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    labels = torch.tensor([SENTIMENT_LABELS.index(x) for x in frame["label"]])
    model.train()
    start = time.perf_counter()
    for i in range(0, len(frame), batch_size):
        part = frame.iloc[i : i + batch_size]
        batch = tokenizer(part["target"].tolist(), part["text"].tolist(), padding="max_length", truncation=True,
                          max_length=max_length, return_tensors="pt").to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(**batch, labels=labels[i : i + batch_size].to(device)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(frame) / (time.perf_counter() - start)


def with_val_split(frame: pd.DataFrame) -> pd.DataFrame:
    """Every 5th pair held out for validation, the same rows for every loop."""
    return frame.assign(split=["val" if i % 5 == 0 else "train" for i in range(len(frame))])


def project_epoch(frame: pd.DataFrame, *, device: str, base_model: str, precision: str = "auto") -> tuple[float, float]:
    """One epoch of train_adapter with the shipped defaults; returns (training samples/s, val macro-F1)."""
    settings = SentimentAdapterConfig(base_model=base_model).model_dump()
    settings.update(epochs=1, device=device, precision=precision)
    with tempfile.TemporaryDirectory() as out:
        result = training.train_adapter(with_val_split(frame), out_dir=out, **settings)
    return result.samples_per_second, result.best_val_macro_f1


def trainer_epoch(frame: pd.DataFrame, *, device: torch.device, base_model: str,
                  overrides: dict | None = None) -> tuple[float, float]:
    """One epoch of transformers' Trainer on the project's model and LoRA settings; (samples/s, val macro-F1).

    `overrides` replace TrainingArguments fields (for example max_grad_norm=0, which turns clipping off), to
    find which of Trainer's defaults makes its first epoch differ from the project loop's."""
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    config = SentimentAdapterConfig(base_model=base_model)
    training.set_seed(config.seed)
    tokenizer = modeling.load_tokenizer(base_model)
    model = modeling.add_lora(modeling.load_classifier(base_model, labels=SENTIMENT_LABELS, num_layers=None),
                              lora_r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                              target_modules=config.target_modules)
    split = with_val_split(frame)

    def dataset(part: pd.DataFrame):
        enc = tokenizer(part["target"].tolist(), part["text"].tolist(), truncation="only_second",
                        max_length=config.max_length)
        labels = [SENTIMENT_LABELS.index(x) for x in part["label"]]
        # a list of dicts is a map-style dataset; the length-grouped sampler reads each item's input_ids
        return [{**{k: v[i] for k, v in enc.items()}, "labels": labels[i]} for i in range(len(labels))]

    train, val = dataset(split[split["split"] == "train"]), dataset(split[split["split"] == "val"])
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, num_train_epochs=1, per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.batch_size * 2, learning_rate=config.learning_rate,
            weight_decay=config.weight_decay, warmup_steps=config.warmup_ratio, lr_scheduler_type="linear",
            train_sampling_strategy="group_by_length", use_cpu=device.type == "cpu", bf16=device.type == "cuda",
            report_to="none", save_strategy="no", logging_strategy="no", disable_tqdm=True, seed=config.seed,
            dataloader_num_workers=0, remove_unused_columns=False, label_names=["labels"], **(overrides or {}))
        class MeanPoolTrainer(Trainer):
            """Cross-entropy on the mean-pooled head's logits (the model returns logits only, as in the project)."""

            def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                labels = inputs.pop("labels")
                outputs = model(**inputs)
                loss = torch.nn.functional.cross_entropy(outputs.logits.float(), labels)
                return (loss, outputs) if return_outputs else loss

        trainer = MeanPoolTrainer(model=model, args=args, train_dataset=train,
                                  data_collator=DataCollatorWithPadding(tokenizer))
        start = time.perf_counter()
        trainer.train()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        # group_by_length also reorders Trainer's *evaluation* batches (transformers 5's _get_eval_sampler returns a
        # LengthGroupedSampler), so `predict` would return the rows shuffled against `val`'s labels: predict in order.
        trainer._get_eval_sampler = lambda dataset: torch.utils.data.SequentialSampler(dataset)
        logits = trainer.predict(val).predictions
    f1 = training.macro_f1(pd.Series([row["labels"] for row in val]).to_numpy(), logits.argmax(1), len(SENTIMENT_LABELS))
    return len(train) / seconds, f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/newsmtsc/train.jsonl", help="NewsMTSC jsonl")
    parser.add_argument("--n", type=int, default=1024, help="training pairs per loop")
    parser.add_argument("--max-length", type=int, default=128, help="the plain loop pads every batch to this")
    parser.add_argument("--batch-size", type=int, default=32, help="plain loop batch size")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--base-model", default="packaged:all-MiniLM-L6-v2",
                        help="encoder for the Trainer reference and the project loop (the plain loop keeps MiniLM)")
    parser.add_argument("--skip-plain", action="store_true", help="only the Trainer reference and the project loop")
    parser.add_argument("--repeats", type=int, default=1, help="alternating Trainer / project runs (medians)")
    parser.add_argument("--precision", default="auto",
                        help="comma-separated train_adapter precisions, each its own row (auto,fp32,bf16)")
    parser.add_argument("--trainer-args", default="", help="TrainingArguments overrides for the Trainer reference, "
                        "e.g. max_grad_norm=0 (comma-separated key=value; values parsed as numbers when they are)")
    args = parser.parse_args()
    overrides = {key: _number(value) for key, value in (item.split("=", 1) for item in args.trainer_args.split(",") if item)}
    precisions = [p for p in args.precision.split(",") if p]
    device = training.resolve_device(args.device)
    frame = load_pairs(args.data, args.n, seed=0)
    torch.manual_seed(0)
    plain = None if args.skip_plain else plain_peft_epoch(frame, batch_size=args.batch_size,
                                                           max_length=args.max_length, device=device)
    # Trainer and the project loop alternate (A B A B ...), so a change in machine load hits both alike;
    # the medians are reported and every repeat is printed.
    runs: dict[str, list[tuple[float, float]]] = {"trainer": [], **{p: [] for p in precisions}}
    for repeat in range(args.repeats):
        runs["trainer"].append(trainer_epoch(frame, device=device, base_model=args.base_model, overrides=overrides))
        for precision in precisions:
            runs[precision].append(project_epoch(frame, device=str(device), base_model=args.base_model,
                                                 precision=precision))
        print(f"repeat {repeat}: " + ", ".join(f"{name} {r[-1][0]:.1f} samples/s (val macro-F1 {r[-1][1]:.4f})"
                                                for name, r in runs.items()), flush=True)
    trainer, trainer_f1 = (statistics.median(x) for x in zip(*runs["trainer"]))
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    print(f"device: {name}; {len(frame)} NewsMTSC pairs (every 5th held out for validation), one epoch each; "
          f"encoder {args.base_model}")
    if plain is not None:
        print(f"plain peft loop (MiniLM, padded to {args.max_length}, fp32/bf16): {plain:8.1f} samples/s")
    print(f"HF Trainer, group_by_length + dynamic padding{' ' + str(overrides) if overrides else ''}: "
          f"{trainer:8.1f} samples/s   val macro-F1 {trainer_f1:.4f}")
    for precision in precisions:
        ours, ours_f1 = (statistics.median(x) for x in zip(*runs[precision]))
        print(f"opensentiment train_adapter (shipped defaults, precision {precision}): {ours:8.1f} samples/s   "
              f"val macro-F1 {ours_f1:.4f}")
        if plain is not None:
            print(f"  speed-up over the plain loop: {ours / plain:.2f}x")
        print(f"  speed-up over Trainer: {ours / trainer:.2f}x; val macro-F1 difference {ours_f1 - trainer_f1:+.4f}")


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


if __name__ == "__main__":
    main()
