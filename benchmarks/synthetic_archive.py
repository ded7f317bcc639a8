"""A synthetic archive of stored days, written as the pipeline's own assets would have stored them.

Texts are resampled from real articles (title + a lead of 300-600 characters cut from one of the body's
600-character slots, distinct within a day), and each topic vector is drawn around the real vector of the
article its text came from: normalise(real_vector + noise). Outlets are renamed `outlet 017` (the form ingestion normalises outlet names to) and each is given
one real outlet's leaning rating and articles, so the bias axis has ratings and signal. Per day it writes the
four day-partitioned assets a night leaves behind (raw_articles, article_embeddings, article_sentences,
entity_mentions) as `<assets>/<asset>/<day>.parquet`, the files ParquetIOManager writes and reads, with the
columns the real assets write. No model runs: sentence probabilities are drawn, the article's sentiment is
aggregated from them by the pipeline's own rule, entity mentions are found by the pipeline's matcher.

Used by benchmarks/archive_scale.py.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ASSETS = ("raw_articles", "article_embeddings", "article_sentences", "entity_mentions")
SOURCE_NAME = "wire"  # article ids are "<source>:<id>", as ingestion makes them
LEAD_CHARS = (300, 600)
MIN_BODY_CHARS = 1200  # shorter bodies would give (near-)identical leads on every resample
NOISE = 0.35  # norm of the noise added to a real vector before normalising (cosine to it ~0.94)
NEUTRAL_BAND = 0.45  # article_embeddings' default (ArticleEmbeddingsConfig.neutral_band)
MAX_SENTENCES = 64  # ArticleEmbeddingsConfig.max_sentences
_SENTENCE = re.compile(r"[^.!?\s][^.!?]*[.!?]*")  # a run up to its end marks ("U.S." makes two: fine here)
ENTITIES = ({"name": "Donald Trump", "aliases": ["Trump"]}, {"name": "Barack Obama", "aliases": ["Obama"]},
            {"name": "Hillary Clinton", "aliases": ["Clinton"]}, {"name": "Congress", "aliases": []},
            {"name": "Supreme Court", "aliases": []}, {"name": "White House", "aliases": []},
            {"name": "Senate", "aliases": []}, {"name": "FBI", "aliases": []})


@dataclass(frozen=True)
class Pool:
    """Real articles to resample: row i has a title, a body, a real outlet, its leaning, a topic and a vector."""

    titles: list[str]
    bodies: list[str]
    outlets: np.ndarray  # real outlet name per row
    leanings: np.ndarray  # left / center / right per row
    topics: np.ndarray
    vectors: np.ndarray  # (n, d) float32, unit rows


@dataclass(frozen=True)
class Outlets:
    """Synthetic outlets: a name, the leaning of the real outlet it stands for, and that outlet's pool rows."""

    names: list[str]
    leanings: list[str]
    rows: list[np.ndarray]  # pool rows each outlet's articles are drawn from
    weights: np.ndarray  # share of the articles (a long tail, as in real news) among outlets of one real outlet
    leads: np.ndarray  # (m, 2) every (pool row, lead slot) an article can be cut from
    row_outlets: list[np.ndarray]  # per pool row, the outlets that stand for its real outlet


def make_outlets(pool: Pool, n_outlets: int) -> Outlets:
    """`n_outlets` outlets; outlet k stands for the k-th real outlet (cycling when there are fewer)."""
    real = sorted(set(pool.outlets))
    rows = [np.flatnonzero(pool.outlets == real[k % len(real)]) for k in range(n_outlets)]
    weights = 1.0 / (np.arange(n_outlets) + 10.0)
    row_outlets = [np.flatnonzero([pool.outlets[row] == real[k % len(real)] for k in range(n_outlets)])
                   for row in range(len(pool.bodies))]
    leads = np.array([(row, slot) for row, ks in enumerate(row_outlets) if len(ks)
                      for slot in range(max(1, len(pool.bodies[row]) // LEAD_CHARS[1]))], dtype=np.int64)
    return Outlets(names=[f"outlet {k:03d}" for k in range(n_outlets)],
                   leanings=[str(pool.leanings[r[0]]) for r in rows], rows=rows, weights=weights,
                   leads=leads.reshape(-1, 2), row_outlets=row_outlets)


def day_sizes(total: int, n_days: int) -> list[int]:
    """`total` articles over `n_days` days, as evenly as whole numbers allow."""
    base, extra = divmod(total, n_days)
    return [base + (1 if i < extra else 0) for i in range(n_days)]


def synthetic_articles(day: str, n: int, pool: Pool, outlets: Outlets, rng: np.random.Generator,
                       ) -> tuple[pd.DataFrame, np.ndarray]:
    """`n` articles published on `day` (raw_articles' columns and dtypes) and the pool row each was drawn from."""
    from opensentiment_pipeline.core.schema import ARTICLE_COLUMNS

    # Distinct lead slots within a day while the pool has enough: slots do not overlap, so ingestion's
    # near-duplicate filter keeps a day's articles, as it keeps real ones.
    picks = rng.choice(len(outlets.leads), size=n, replace=n > len(outlets.leads))
    rows, slots = outlets.leads[picks, 0], outlets.leads[picks, 1]
    which = np.empty(n, dtype=np.int64)
    for i, row in enumerate(rows):
        ks = outlets.row_outlets[row]
        which[i] = ks[0] if len(ks) == 1 else rng.choice(ks, p=outlets.weights[ks] / outlets.weights[ks].sum())
    lengths = rng.integers(*LEAD_CHARS, size=n, endpoint=True)
    jitter = rng.random(n)
    texts = []
    for row, slot, length, start in zip(rows, slots, lengths, jitter):
        body = pool.bodies[row]
        offset = slot * LEAD_CHARS[1] + int(start * (LEAD_CHARS[1] - length))
        if offset:  # begin at a word, as a lead would
            offset = body.find(" ", offset) + 1 or offset
        texts.append(body[offset:offset + length].strip())
    seconds = pd.to_timedelta(rng.integers(0, 86_400, size=n), unit="s")
    frame = pd.DataFrame({
        "article_id": [f"{SOURCE_NAME}:{day}-{i:06d}" for i in range(n)],
        "outlet": [outlets.names[k] for k in which],
        "published_at": pd.Timestamp(day, tz="UTC") + seconds,
        "title": [pool.titles[r] for r in rows],
        "text": texts,
        "source": SOURCE_NAME,
        "split": None, "target": None, "task": "sentiment", "label": None, "agreement": np.full(n, np.nan),
        "leaning": [outlets.leanings[k] for k in which],
        "topic": pool.topics[rows],
        "votes": [[] for _ in range(n)],
    }, columns=list(ARTICLE_COLUMNS))
    return frame.assign(partition_day=day), rows


def unit_noise_around(vectors: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """normalise(v + e) for each row v, with e Gaussian of expected norm `noise`."""
    out = vectors + rng.standard_normal(vectors.shape, dtype=np.float32) * np.float32(noise / np.sqrt(vectors.shape[1]))
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def derived_tables(raw: pd.DataFrame, rows: np.ndarray, pool: Pool, rng: np.random.Generator, *,
                   model_version: str, text_window: str) -> dict[str, pd.DataFrame]:
    """article_embeddings, article_sentences and entity_mentions for the articles `raw` (drawn from pool `rows`),
    in the columns (and order) the real assets store."""
    from opensentiment_pipeline.core.analysis import article_sentiment
    from opensentiment_pipeline.core.schema import SENTIMENT_LABELS, title_and_text
    from opensentiment_pipeline.core.vectors import encoding
    from opensentiment_pipeline.defs.assets.vectors import EMBEDDING_FRAME_COLUMNS, SENTENCE_FRAME_COLUMNS

    day_of = raw["partition_day"].to_numpy()
    split = split_sentences(title_and_text(raw))
    at = split["text_idx"].to_numpy()
    proba = drawn_probabilities(rng, len(split))
    scored = pd.DataFrame({
        "article_id": raw["article_id"].to_numpy()[at], "outlet": raw["outlet"].to_numpy()[at],
        "sentence_idx": split["sentence_idx"], "start": split["start"], "end": split["end"],
        "sentence": split["sentence"],
        "n_tokens": (split["sentence"].str.count(" ") * 1.3 + 3).astype("int64"),  # MiniLM ~1.3 tokens a word
        **{f"p_{label}": proba[:, k] for k, label in enumerate(SENTIMENT_LABELS)},
        "sentiment": np.asarray(SENTIMENT_LABELS, dtype=object)[proba.argmax(1)],
        "model_version": model_version, "partition_day": day_of[at]})
    by_article = raw[["article_id"]].merge(article_sentiment.aggregate_sentences(scored, neutral_band=NEUTRAL_BAND),
                                           on="article_id", how="left", validate="one_to_one")
    frame = encoding.embeddings_frame(raw["article_id"], unit_noise_around(pool.vectors[rows], rng, NOISE),
                                      model_version=model_version)
    frame.insert(3, "sentiment_embedding", pd.Series(list(unit_noise_around(pool.vectors[rows], rng, NOISE)),
                                                     dtype=object))
    frame["sentiment"] = by_article["sentiment"].to_numpy()
    frame["sentiment_confidence"] = by_article["sentiment_confidence"].astype("float32").to_numpy()
    for column in ("n_sentences", "negative_share", "positive_share", "net_sentiment"):
        frame[column] = by_article[column].to_numpy()
    frame["text_window"] = text_window
    frame["partition_day"] = day_of
    return {"article_embeddings": frame[list(EMBEDDING_FRAME_COLUMNS)],
            "article_sentences": scored[list(SENTENCE_FRAME_COLUMNS)],
            "entity_mentions": mention_table(scored, rng, model_version=model_version)}


def split_sentences(texts: list[str]) -> pd.DataFrame:
    """core.vectors.sentences.split_sentences' columns (text_idx, sentence_idx, start, end, sentence) from a
    regular expression: blingfire, the pipeline's splitter, would take ~35 min of a 1M archive's drawing."""
    rows = []
    for i, text in enumerate(texts):
        for n, match in enumerate(_SENTENCE.finditer(text)):
            if n == MAX_SENTENCES:
                break
            rows.append((i, n, match.start(), match.end(), match.group()))
    return pd.DataFrame(rows, columns=["text_idx", "sentence_idx", "start", "end", "sentence"]).astype(
        {"text_idx": "int64", "sentence_idx": "int64", "start": "int64", "end": "int64", "sentence": "object"})


def mention_table(article_sentences: pd.DataFrame, rng: np.random.Generator, *, model_version: str) -> pd.DataFrame:
    """entity_mentions for `article_sentences`: ENTITIES found by the pipeline's matcher, probabilities drawn."""
    from opensentiment_pipeline.core.analysis import entities
    from opensentiment_pipeline.core.schema import SENTIMENT_LABELS
    from opensentiment_pipeline.defs.assets.sentiment import MENTION_FRAME_COLUMNS

    mentions = entities.find_mentions(article_sentences, entities.parse_entities(ENTITIES))
    proba = drawn_probabilities(rng, len(mentions))
    for k, label in enumerate(SENTIMENT_LABELS):
        mentions[f"p_{label}"] = proba[:, k]
    mentions["sentiment"] = np.asarray(SENTIMENT_LABELS, dtype=object)[proba.argmax(1)]
    mentions = mentions.merge(article_sentences[["article_id", "sentence_idx", "outlet", "partition_day"]],
                              on=["article_id", "sentence_idx"], how="left", validate="many_to_one")
    return mentions.assign(model_version=model_version)[list(MENTION_FRAME_COLUMNS)]


def drawn_probabilities(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3) float32 negative/neutral/positive probabilities, mostly neutral as news sentences are."""
    return rng.dirichlet([1.0, 2.5, 1.0], size=n).astype(np.float32)


def write_archive(assets_dir: str | Path, days: list[str], total: int, pool: Pool, outlets: Outlets, *, seed: int,
                  model_version: str, text_window: str) -> dict:
    """`total` articles over `days`, one <assets_dir>/<asset>/<day>.parquet per asset and day; returns the rows
    written per asset and the seconds spent drawing and writing."""
    assets_dir = Path(assets_dir)
    for asset in ASSETS:
        (assets_dir / asset).mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(ASSETS, 0)
    draw = write = 0.0
    for i, (day, n) in enumerate(zip(days, day_sizes(total, len(days)))):
        start = time.perf_counter()
        rng = np.random.default_rng([seed, i])
        raw, rows = synthetic_articles(day, n, pool, outlets, rng)
        tables = {"raw_articles": raw, **derived_tables(raw, rows, pool, rng, model_version=model_version,
                                                        text_window=text_window)}
        middle = time.perf_counter()
        for asset, table in tables.items():
            table.to_parquet(assets_dir / asset / f"{day}.parquet", index=False)  # as ParquetIOManager writes
            counts[asset] += len(table)
        draw, write = draw + middle - start, write + time.perf_counter() - middle
    return {"rows": counts, "draw_seconds": round(draw, 2), "write_seconds": round(write, 2)}


def load_pool(data: str | Path, *, n_real: int, seed: int, cache_dir: str | Path) -> Pool:
    """`n_real` real articles with bodies of at least MIN_BODY_CHARS, and their topic vectors from the packaged
    MiniLM base encoder (title + the first 600 characters), embedded once and cached in `cache_dir`."""
    frame = pd.read_parquet(data, columns=["ID", "title", "content_original", "source", "bias_text", "topic"])
    frame = frame[frame["content_original"].fillna("").str.len() >= MIN_BODY_CHARS]
    frame = frame.sample(n=min(n_real, len(frame)), random_state=seed).reset_index(drop=True)
    cache = Path(cache_dir) / f"pool_vectors_{len(frame)}_{seed}.npz"
    if cache.exists() and list(np.load(cache, allow_pickle=False)["ids"]) == frame["ID"].tolist():
        vectors = np.load(cache)["vectors"]
    else:
        vectors = embed_real(frame)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, ids=np.asarray(frame["ID"].tolist()), vectors=vectors)
    return Pool(titles=frame["title"].fillna("").tolist(), bodies=frame["content_original"].tolist(),
                outlets=frame["source"].to_numpy(), leanings=frame["bias_text"].to_numpy(),
                topics=frame["topic"].to_numpy(dtype=object), vectors=vectors.astype(np.float32))


def embed_real(frame: pd.DataFrame) -> np.ndarray:
    """Topic vectors as article_embeddings makes them (frozen base encoder, title + lead, unit rows)."""
    import torch

    from opensentiment_pipeline.core.model import modeling
    from opensentiment_pipeline.core.schema import title_and_text
    from opensentiment_pipeline.core.vectors import encoding

    torch.set_num_threads(1)
    spec = "packaged:all-MiniLM-L6-v2"
    texts = title_and_text(frame.assign(text=frame["content_original"].str.slice(0, 600)))
    return encoding.encode_texts(modeling.load_encoder(spec, num_layers=None), modeling.load_tokenizer(spec), texts,
                                 batch_size=32, max_length=256, device="cpu", show_progress=True)
