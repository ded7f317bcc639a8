"""Teacher (mpnet) and distilled student (MiniLM) on the fixed real-data splits, from exported examples.

The Dagster graph (`make shared-data-quality`) is the way users run this; this script runs the same core
functions on the same rows without Dagster or MLflow, so it also runs on a GPU machine that has torch,
transformers and peft but not our whole stack. It reads:

- `--examples`: the `sentiment_examples` asset of `configs/shared_data_quality.yaml` (train / val / test rows;
  export: `.opensentiment/assets/sentiment_examples.parquet` after `make shared-data-quality` or a
  `--select '+sentiment_examples'` materialization);
- `--unlabelled`: a Parquet with article_id, title, text (e.g. ABP articles) for distillation;
- `--trials`: JSON list of teacher settings (merged over `--config`'s sentiment_adapter block). Every trial is
  scored on validation; only the best one is scored on test, once. The student is distilled from it.

    python benchmarks/sentiment_quality.py --examples ex.parquet --unlabelled abp.parquet \
        --teacher packaged:all-mpnet-base-v2 --student packaged:all-MiniLM-L6-v2 --out /tmp/quality
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from opensentiment_pipeline.core.model import distillation, evaluation, modeling, training
from opensentiment_pipeline.core.schema import SENTIMENT_LABELS

TRAIN_KEYS = ("num_layers", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "max_length", "learning_rate",
              "weight_decay", "warmup_ratio", "epochs", "batch_size", "grad_accum", "patience", "seed")
DEFAULTS = dict(num_layers=None, lora_r=16, lora_alpha=32, lora_dropout=0.0, target_modules=["auto"], max_length=128,
                learning_rate=1e-3, weight_decay=0.01, warmup_ratio=0.06, epochs=6, batch_size=16, grad_accum=1,
                patience=3, seed=13)


def settings_from_config(path: Path | None, asset: str) -> dict:
    """The training settings of `asset` in a `-c` style run config, over the asset's defaults."""
    settings = dict(DEFAULTS)
    if path is not None:
        block = yaml.safe_load(Path(path).read_text())["ops"].get(asset, {}).get("config", {})
        settings.update({k: v for k, v in block.items() if k in TRAIN_KEYS or k in ("base_model", "temperature",
                                                                                   "hard_weight", "unlabelled_limit")})
    return settings


def train(examples: pd.DataFrame, base_model: str, settings: dict, out_dir: Path, device: str, **extra):
    kwargs = {k: settings[k] for k in TRAIN_KEYS}
    return training.train_adapter(examples, base_model=base_model, out_dir=out_dir, device=device,
                                  labels=SENTIMENT_LABELS, progress=False, precision="auto", **kwargs, **extra)


def test_report(adapter_dir: Path, examples: pd.DataFrame, device: str) -> tuple[dict, np.ndarray]:
    test = examples[examples["split"] == "test"].reset_index(drop=True)
    manifest, tokenizer, model = modeling.load_adapter(adapter_dir, device=str(training.resolve_device(device)))
    proba = training.predict_proba(model, tokenizer, test, manifest=manifest, batch_size=128, device=device)
    report = evaluation.evaluate_predictions(test, proba, examples[examples["split"] == "train"],
                                             labels=manifest.labels, n_bootstrap=1000, seed=0, min_group_rows=10)
    return report, proba


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=Path, required=True, help="sentiment_examples Parquet (fixed splits)")
    parser.add_argument("--unlabelled", type=Path, help="Parquet with article_id, title, text for distillation")
    parser.add_argument("--config", type=Path, default=Path("configs/shared_data_quality.yaml"),
                        help="run config whose sentiment_adapter / student_adapter blocks give the settings")
    parser.add_argument("--teacher", default="packaged:all-mpnet-base-v2", help="teacher base model spec")
    parser.add_argument("--student", default="packaged:all-MiniLM-L6-v2", help="student base model spec")
    parser.add_argument("--trials", default="[{}]", help="JSON list of teacher setting overrides, chosen on val")
    parser.add_argument("--student-trials", default="[{}]", help="JSON list of student setting overrides")
    parser.add_argument("--plain-student", action="store_true", help="also train the student without a teacher")
    parser.add_argument("--sources", nargs="+", help="keep only these example sources, e.g. fpb (all splits)")
    parser.add_argument("--limit", type=int, help="subsample train/val and test rows to N each (smoke runs only)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--budget-s", type=float, default=float("inf"),
                        help="wall budget: a further teacher trial starts only inside 55 %% of it, a student trial "
                             "inside 85 %%, the plain student only if it should still fit (lent machines are timed)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    examples = pd.read_parquet(args.examples)
    if args.sources:
        examples = examples[examples["source"].isin(args.sources)].reset_index(drop=True)
    if args.limit:
        examples = pd.concat([examples[examples["split"] != "test"].sample(n=args.limit, random_state=0),
                              examples[examples["split"] == "test"].sample(n=args.limit, random_state=0)],
                             ignore_index=True)
    results: dict = {"examples": examples.groupby(["source", "split"]).size().rename("n").reset_index().to_dict("records"),
                     "device": str(training.resolve_device(args.device)), "trials": []}
    teacher_base = settings_from_config(args.config, "sentiment_adapter")
    best = None
    clock = time.perf_counter()
    for i, override in enumerate(json.loads(args.trials)):
        if i and not fits(clock, results["trials"], 0.55 * args.budget_s):
            print(f"budget: teacher trial {i} {override} not started", flush=True)
            continue
        settings = {**teacher_base, **override}
        started = time.perf_counter()
        result = train(examples, args.teacher, settings, args.out / f"teacher_{i}", args.device)
        row = {"trial": i, "override": override, "best_val_macro_f1": result.best_val_macro_f1,
               "best_epoch": result.best_epoch, "seconds": time.perf_counter() - started,
               "samples_per_second": result.samples_per_second, "history": result.history}
        results["trials"].append(row)
        print(f"teacher trial {i} {override}: val macro-F1 {result.best_val_macro_f1:.4f} (epoch {result.best_epoch}), "
              f"{row['seconds']:.0f} s", flush=True)
        if best is None or result.best_val_macro_f1 > best[0]:
            best = (result.best_val_macro_f1, i, settings)
    teacher_dir = args.out / f"teacher_{best[1]}"
    report, teacher_test_proba = test_report(teacher_dir, examples, args.device)
    results["teacher"] = {"trial": best[1], "settings": best[2], "test": report}
    print("teacher test:", json.dumps(summary(report)), flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))

    if args.unlabelled is not None:
        manifest, tokenizer, model = modeling.load_adapter(teacher_dir, device=str(training.resolve_device(args.device)))
        student_base = settings_from_config(args.config, "student_adapter")
        temperature = float(student_base.get("temperature", 2.0))
        train_rows = examples[examples["split"] == "train"]
        articles = pd.read_parquet(args.unlabelled)
        pool = distillation.unlabelled_pool(articles, examples, limit=int(student_base.get("unlabelled_limit", 10000)),
                                            seed=0)
        started = time.perf_counter()
        teach = dict(manifest=manifest, temperature=temperature, batch_size=128, device=args.device)
        train_proba = distillation.teacher_probabilities(model, tokenizer, train_rows, **teach)
        pool_proba = distillation.teacher_probabilities(model, tokenizer, pool, **teach)
        results["teacher_labelling_seconds"] = time.perf_counter() - started
        results["pool_size"] = len(pool)
        results["pool_teacher_label_shares"] = dict(zip(SENTIMENT_LABELS, np.bincount(
            pool_proba.argmax(1), minlength=3).tolist()))
        student_frame = distillation.student_examples(examples, train_proba, pool, pool_proba, labels=SENTIMENT_LABELS)
        student_frame = pd.concat([student_frame, examples[examples["split"] == "test"]], ignore_index=True)
        results["students"] = []
        for j, override in enumerate(json.loads(args.student_trials)):
            if j and not fits(clock, results["students"], 0.85 * args.budget_s):
                print(f"budget: student trial {j} {override} not started", flush=True)
                continue
            settings = {**student_base, **override}
            started = time.perf_counter()
            res = train(student_frame, args.student, settings, args.out / f"student_{j}", args.device,
                        distill_hard_weight=float(settings.get("hard_weight", 0.5)))
            results["students"].append({"trial": j, "override": override, "best_val_macro_f1": res.best_val_macro_f1,
                                        "best_epoch": res.best_epoch, "seconds": time.perf_counter() - started,
                                        "history": res.history})
            print(f"student trial {j} {override}: val macro-F1 {res.best_val_macro_f1:.4f}", flush=True)
        best_student = max(results["students"], key=lambda r: r["best_val_macro_f1"])
        s_report, s_proba = test_report(args.out / f"student_{best_student['trial']}", examples, args.device)
        results["student"] = {"trial": best_student["trial"], "test": s_report,
                              "test_agreement_with_teacher": distillation.agreement_with_teacher(s_proba, teacher_test_proba)}
        print("student test:", json.dumps(summary(s_report)), flush=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
        if args.plain_student and fits(clock, results["students"], args.budget_s):
            started = time.perf_counter()
            settings = {**student_base, **json.loads(args.student_trials)[best_student["trial"]]}
            res = train(examples, args.student, settings, args.out / "student_plain", args.device)
            p_report, _ = test_report(args.out / "student_plain", examples, args.device)
            results["student_plain"] = {"best_val_macro_f1": res.best_val_macro_f1, "test": p_report,
                                        "seconds": time.perf_counter() - started}
            print("plain student test:", json.dumps(summary(p_report)), flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))


def fits(clock: float, done: list[dict], budget: float) -> bool:
    """Whether one more run, as long as the mean of `done`, should end inside `budget` seconds from `clock`."""
    mean = sum(r["seconds"] for r in done) / max(len(done), 1)
    return time.perf_counter() - clock + mean <= budget


def summary(report: dict) -> dict:
    """The headline figures: overall and per-source macro-F1, FPB all-agree accuracy, TF-IDF on the same rows."""
    out = {"macro_f1": round(report["macro_f1"], 4),
           "tfidf_macro_f1": round(report["baselines"]["tfidf_logreg"]["macro_f1"], 4)}
    out.update({f"{r['source']}_macro_f1": round(r["macro_f1"], 4) for r in report["by_source"]})
    out.update({f"{r['source']}_allagree_accuracy": round(r["accuracy"], 4) for r in report.get("unanimous_by_source", [])})
    return out


if __name__ == "__main__":
    main()
