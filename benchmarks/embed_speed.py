"""Embedding throughput: the project's `encode_texts` vs sentence-transformers' `encode`, side by side.

Both embed the same real texts with the same weights (`--model`: the packaged all-MiniLM-L6-v2, or a local
sentence-transformers folder such as ~/.cache/opensentiment/models/all-mpnet-base-v2-78c0197b6159, which
`make mpnet` extracts on first use), the same batch size and the same token limit
(sentence-transformers' `max_seq_length` is set to `--max-length`), normalised, end to end (tokenisation
included). Paths:

- `sentence-transformers`: `SentenceTransformer.encode(texts, batch_size=B, normalize_embeddings=True)`.
- `project fp32`: `encode_texts(AutoModel, ...)`, the torch path.
- `project onnx` (CPU only): `encode_texts(onnx_encoder(AutoModel), ...)`: ONNX Runtime with its transformer
  fusions; `project onnx-plain` without the fusions (`fuse=False`). Export time is printed, not timed.
- `project bf16` (CPU): the torch path under `torch.autocast("cpu", dtype=torch.bfloat16)`.
- `project int8` (CPU only): `encode_texts(quantize_for_cpu(AutoModel, layers="all"), ...)`.
- `project int8-attention` (CPU only): the same with `layers="attention"`.

Two text sets: news articles (title + the start of `content_original`, Article-Bias-Prediction sample; nearly all
reach the token limit) and short news sentences (NewsMTSC devtest_rw `sentence_normalized`). The paths run
interleaved in one process, in a rotating order, for `--rounds` rounds after a warm-up (optionally `--chunk`
texts per call), so a busy machine slows them alike; the speed-up is the median of the ratios of back-to-back
calls on the same texts. Fidelity is the cosine between two paths' vectors of each text; for int8 also the
share of each text's 10 nearest neighbours (cosine, within the set) under float32 that it keeps (an approximate
index should keep >= 0.95). The padding line counts the token positions the encoder computes when
each call's batches are sorted by character length (what sentence-transformers does) vs by token length (what
encode_texts does).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/embed_speed.py --n 1000 [--sets sentences] [--device auto]
        [--model ~/.cache/opensentiment/models/all-mpnet-base-v2-78c0197b6159] [--paths fp32,onnx,bf16]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import int8_encoder  # benchmarks/int8_encoder.py: the int8 path is measured here, not shipped
import numpy as np
import pandas as pd
import torch

from opensentiment_pipeline.core.vectors import backends, encoding

DEFAULT_MAX_LENGTH = {"articles": 256, "sentences": 128}
# The approximate paths' stated tolerance against the float32 path (per-text cosine).
INT8_MIN_COSINE, INT8_MEAN_COSINE = 0.99, 0.995
# The float32 path must reproduce sentence-transformers (also a unit test).
FP32_MIN_COSINE = 0.9999
ST = "sentence-transformers"
INT8_LAYERS = {"int8": "all", "int8-attention": "attention"}  # benchmark path -> quantize_for_cpu(layers=)
ONNX_FUSE = {"onnx": True, "onnx-plain": False}  # benchmark path -> onnx_encoder(fuse=)
# Paths compared with the float32 path against the tolerance above.
APPROXIMATE = (*ONNX_FUSE, "bf16", *INT8_LAYERS)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="texts per set (the sentence set has 1,067)")
    parser.add_argument("--sets", default="articles,sentences", help="comma-separated: articles, sentences")
    parser.add_argument("--data", default="../shared/data/article_bias_prediction/"
                        "abp_articles_text_sample_cap300_per_source.parquet",
                        help="Article-Bias-Prediction parquet with title and content_original")
    parser.add_argument("--article-chars", type=int, default=2000,
                        help="characters of content_original after the title (the token limit cuts earlier)")
    parser.add_argument("--sentences", default="../shared/data/newsmtsc/devtest_rw.jsonl",
                        help="NewsMTSC jsonl with sentence_normalized")
    parser.add_argument("--max-length", type=int, default=None,
                        help="token limit for both paths; default 256 for articles, 128 for sentences")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass, both paths")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes of each path over each set")
    parser.add_argument("--chunk", type=int, default=0,
                        help="texts per timed call (0: the whole set in one call). Smaller chunks keep each "
                        "comparison seconds apart on a busy machine, but each call then sorts only its own "
                        "chunk, which shrinks the padding saved on mixed-length sets")
    parser.add_argument("--paths", default="fp32,onnx,int8,int8-attention",
                        help="project paths to time against sentence-transformers: fp32, onnx, onnx-plain, bf16, "
                        "int8, int8-attention (all but fp32 are CPU only)")
    parser.add_argument("--model", default="packaged:all-MiniLM-L6-v2",
                        help="model spec or a local sentence-transformers folder "
                             "(e.g. the all-mpnet-base-v2 folder under ~/.cache/opensentiment/models)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads; default: torch's own")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="which articles are sampled")
    args = parser.parse_args()
    sets = args.sets.split(",")
    if not set(sets) <= set(DEFAULT_MAX_LENGTH) or not sets:
        parser.error(f"--sets must name some of {sorted(DEFAULT_MAX_LENGTH)}; got {args.sets!r}")
    paths = args.paths.split(",")
    if not set(paths) <= {"fp32", *APPROXIMATE} or not paths:
        parser.error(f"--paths must name some of fp32, {', '.join(APPROXIMATE)}; got {args.paths!r}")
    if min(args.n, args.batch_size, args.rounds) < 1 or args.chunk < 0:
        parser.error("--n, --batch-size and --rounds must be >= 1 and --chunk >= 0")
    args.sets, args.paths = sets, paths
    return args


def load_articles(path: str, *, n: int, chars: int, seed: int) -> list[str]:
    frame = pd.read_parquet(path, columns=["title", "content_original"])
    frame = frame.sample(n=min(n, len(frame)), random_state=seed)
    return [f"{title}. {body[:chars]}" for title, body in zip(frame["title"], frame["content_original"])]


def load_sentences(path: str, *, n: int) -> list[str]:
    return pd.read_json(path, lines=True)["sentence_normalized"].head(n).tolist()


def padded_positions(lengths: np.ndarray, order: np.ndarray, batch_size: int) -> int:
    """Token positions the encoder computes: each batch is padded to its longest text."""
    return int(sum(lengths[order[i : i + batch_size]].max() * len(order[i : i + batch_size])
                   for i in range(0, len(order), batch_size)))


def padding_report(tokenizer, texts: list[str], *, max_length: int, batch_size: int, chunk: int) -> str:
    """Real tokens vs positions computed, sorting each call's `chunk` texts by characters or by tokens."""
    lengths = np.array([len(r) for r in encoding.tokenize_texts(tokenizer, texts, max_length=max_length)])
    by_chars = by_tokens = 0
    for start in range(0, len(texts), chunk):
        part = lengths[start : start + chunk]
        chars = np.array([-len(t) for t in texts[start : start + chunk]])
        by_chars += padded_positions(part, np.argsort(chars, kind="stable"), batch_size)
        by_tokens += padded_positions(part, np.argsort(-part, kind="stable"), batch_size)
    real = int(lengths.sum())
    return (f"{real:,} real tokens (median {int(np.median(lengths))}/text); positions computed: "
            f"sorted by characters {by_chars:,} (+{by_chars / real - 1:.1%}), "
            f"by tokens {by_tokens:,} (+{by_tokens / real - 1:.1%})")


@dataclass
class Timing:
    seconds: list[list[float]]  # [round][chunk]
    vectors: np.ndarray  # (n_texts, hidden) from the last round


def time_paths(paths: dict[str, Callable[[list[str]], np.ndarray]], texts: list[str], *, rounds: int, chunk: int,
               warmup: list[str], device: torch.device) -> dict[str, Timing]:
    """Each path once on `warmup`, then `rounds` passes over `texts`, `chunk` texts per timed call; for every
    chunk all paths run back to back in a rotating order (A B C, B C A, ...), so each ratio compares calls
    seconds apart."""
    def run(fn: Callable[[list[str]], np.ndarray], batch: list[str]) -> tuple[float, np.ndarray]:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = fn(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start, out

    for fn in paths.values():
        run(fn, warmup)
    names = list(paths)
    chunks = [texts[i : i + chunk] for i in range(0, len(texts), chunk)]
    timings = {name: Timing([], np.empty(0)) for name in names}
    for r in range(rounds):
        outputs: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for name in names:
            timings[name].seconds.append([])
        for c, part in enumerate(chunks):
            shift = (r * len(chunks) + c) % len(names)
            for name in names[shift:] + names[:shift]:
                seconds, vectors = run(paths[name], part)
                timings[name].seconds[r].append(seconds)
                outputs[name].append(vectors)
        for name in names:
            timings[name].vectors = np.concatenate(outputs[name])
    return timings


def cosine_stats(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cos.min()), float(cos.mean())


def neighbour_agreement(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean share of each row's k nearest rows (cosine, itself excluded) under `b` that `a` also ranks top k."""
    def top_k(x: np.ndarray) -> np.ndarray:
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        sim = unit @ unit.T  # (n, n)
        np.fill_diagonal(sim, -np.inf)
        return np.argpartition(-sim, k, axis=1)[:, :k]

    k = min(k, len(a) - 2)
    if k < 1:
        return float("nan")
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(top_k(a), top_k(b))]))


def fidelity_lines(vectors: dict[str, np.ndarray]) -> list[str]:
    lines = []
    if "project fp32" in vectors:
        lo, mean = cosine_stats(vectors["project fp32"], vectors[ST])
        verdict = "ok" if lo >= FP32_MIN_COSINE else f"BELOW the required {FP32_MIN_COSINE}"
        lines.append(f"fp32 vs {ST}: cosine min {lo:.6f}, mean {mean:.6f} ({verdict})")
    for path in APPROXIMATE:
        if f"project {path}" not in vectors:
            continue
        ours = vectors[f"project {path}"]
        lo, mean = cosine_stats(ours, vectors[ST])
        lines.append(f"{path} vs {ST}: cosine min {lo:.5f}, mean {mean:.5f}")
        if "project fp32" in vectors:
            fp32 = vectors["project fp32"]
            lo, mean = cosine_stats(ours, fp32)
            verdict = "within" if lo >= INT8_MIN_COSINE and mean >= INT8_MEAN_COSINE else "OUTSIDE"
            lines.append(f"{path} vs fp32: cosine min {lo:.5f}, mean {mean:.5f} ({verdict} the tolerance "
                         f"min >= {INT8_MIN_COSINE}, mean >= {INT8_MEAN_COSINE}); 10-NN agreement "
                         f"{neighbour_agreement(ours, fp32):.3f}")
    return lines


def bench_set(name: str, texts: list[str], *, st_model, encoders: dict[str, torch.nn.Module], tokenizer,
              args: argparse.Namespace, device: torch.device) -> list[str]:
    """Time and compare all paths on one text set; print the details and return the summary's Markdown."""
    max_length = args.max_length or DEFAULT_MAX_LENGTH[name]
    st_model.max_seq_length = max_length
    b = args.batch_size

    def project(model: torch.nn.Module, bf16: bool) -> Callable[[list[str]], np.ndarray]:
        def encode(t: list[str]) -> np.ndarray:
            autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
            with autocast:
                return encoding.encode_texts(model, tokenizer, t, batch_size=b, max_length=max_length, device=device)
        return encode

    paths: dict[str, Callable[[list[str]], np.ndarray]] = {
        ST: lambda t: st_model.encode(t, batch_size=b, normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=False),
    }
    paths.update({f"project {path}": project(model, path == "bf16") for path, model in encoders.items()})

    chunk_note = f", {args.chunk} texts per timed call" if args.chunk and args.chunk < len(texts) else ""
    print(f"\n== {name}: {len(texts)} texts, max_length {max_length}, batch {b}, {args.rounds} rounds{chunk_note}")
    chunk = args.chunk or len(texts)
    padding = padding_report(tokenizer, texts, max_length=max_length, batch_size=b, chunk=chunk)
    print("padding: " + padding)
    timings = time_paths(paths, texts, rounds=args.rounds, chunk=chunk, warmup=texts[: 2 * b], device=device)
    rows = []
    for path, timing in timings.items():
        rates = [len(texts) / sum(per_chunk) for per_chunk in timing.seconds]
        line = f"{path:>24}: {statistics.median(rates):8.1f} texts/s (rounds: {', '.join(f'{x:.1f}' for x in rates)})"
        ratios = {}
        for base in (ST, "project fp32"):
            if path in (base, ST) or base not in timings:
                continue
            # One ratio per (round, chunk): the two calls ran back to back on the same texts.
            pairs = [(bs, s) for br, r in zip(timings[base].seconds, timing.seconds) for bs, s in zip(br, r)]
            per_call = [bs / s for bs, s in pairs]
            ratios[base] = statistics.median(per_call)
            line += (f"; vs {base}: {ratios[base]:.2f}x (per call: min {min(per_call):.2f}, "
                     f"max {max(per_call):.2f}, n {len(per_call)})")
        print(line)
        rows.append((path, statistics.median(rates), ratios))
    fidelity = fidelity_lines({path: timing.vectors for path, timing in timings.items()})
    for line in fidelity:
        print("fidelity: " + line)

    summary = [f"**{name}**: {len(texts)} texts, max_length {max_length}, batch {b}{chunk_note}; texts/s: median "
               f"of {args.rounds} rounds; speed-ups: median of the per-call ratios of back-to-back calls", "",
               f"| path | texts/s | vs {ST} | vs project fp32 |", "|---|---|---|---|"]
    summary += [f"| {p} | {rate:.1f} | {_ratio(ratios, ST)} | {_ratio(ratios, 'project fp32')} |"
                for p, rate, ratios in rows]
    summary += ["", f"- padding: {padding}"] + [f"- {line}" for line in fidelity] + [""]
    return summary


def _ratio(ratios: dict[str, float], base: str) -> str:
    return f"{ratios[base]:.2f}x" if base in ratios else "—"


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    from opensentiment_pipeline.core.model import modeling

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = modeling.resolve_device(args.device)
    path = modeling.resolve_model_path(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path).eval()
    st_model = SentenceTransformer(path, device=str(device))
    encoders = {"fp32": encoder} if "fp32" in args.paths else {}
    for name in args.paths:
        if name == "fp32":
            continue
        if device.type != "cpu":
            print(f"{name} skipped: it is CPU only and the device is {device}")
        elif name in INT8_LAYERS:
            encoders[name] = int8_encoder.quantize_for_cpu(encoder, layers=INT8_LAYERS[name])
        elif name in ONNX_FUSE:
            start = time.perf_counter()
            encoders[name] = backends.onnx_encoder(encoder, fuse=ONNX_FUSE[name])
            print(f"{name}: export + session {time.perf_counter() - start:.1f} s")
        else:  # bf16: the float encoder under autocast
            encoders[name] = encoder

    if device.type == "cuda":
        machine = f"{torch.cuda.get_device_name(device)}; project path under bf16 autocast, {ST} float32"
    else:
        machine = (f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"torch {torch.__version__} with {torch.get_num_threads()} threads, "
                   f"1-min load average {os.getloadavg()[0]:.1f} at start")
    print(f"device: {machine}")

    loaders = {
        "articles": lambda: load_articles(args.data, n=args.n, chars=args.article_chars, seed=args.seed),
        "sentences": lambda: load_sentences(args.sentences, n=args.n),
    }
    summary = []
    for name in args.sets:
        summary += bench_set(name, loaders[name](), st_model=st_model, encoders=encoders, tokenizer=tokenizer,
                             args=args, device=device)

    print("\n---- summary for benchmarks/RESULTS.md ----")
    print(f"### Embedding speed, {datetime.date.today().isoformat()}\n")
    print(f"Command: `HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/embed_speed.py {' '.join(sys.argv[1:])}`  ")
    print(f"Machine: {machine}; model {args.model}, sentence-transformers "
          f"{importlib.metadata.version('sentence-transformers')}\n")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
