"""Embed BASIL and the ABP text sample once for the story benchmarks, and cache the vectors.

The distractors are the ABP articles dated within `NEAR_DAYS` of a BASIL article (2,621 of the 8,928): twice the
widest story window the benchmark tries, so every distractor that could reach a BASIL story directly or through one
other distractor is in; the others (other years, or undated: left out of stories anyway) cannot change the score.

The text window is the title and the lead: `title + "\\n\\n" + text`, the first 256 tokens (max_chunks 1), with the
packaged frozen all-MiniLM-L6-v2, the encoder that gives article_embeddings' topic vector. The vectors are cached as
`<cache>/basil.npz` and `<cache>/abp.npz` (article ids and a float32 matrix); a cached file is reused when it holds
the same article ids.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/story_vectors.py --cache /path/to/cache
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

BASIL = Path("../shared/data/basil/basil_articles.parquet")
ABP = Path("../shared/data/article_bias_prediction/abp_articles_text_sample_cap300_per_source.parquet")
MAX_LENGTH = 256
NEAR_DAYS = 14
log = logging.getLogger("story_vectors")


def read_basil(path: Path = BASIL) -> pd.DataFrame:
    """BASIL as article rows: article_id, outlet, day, title, text, event, relative_stance."""
    frame = pd.read_parquet(path)
    return pd.DataFrame({"article_id": frame["article_id"].astype(str), "outlet": frame["source"].str.lower(),
                         "day": pd.to_datetime(frame["date"]), "title": frame["title"].fillna(""),
                         "text": frame["text"].fillna(""), "event": frame["triplet_uuid"],
                         "relative_stance": frame["relative_stance"]})


def read_abp(path: Path = ABP) -> pd.DataFrame:
    """The ABP text sample as article rows (event None); undated rows are kept with NaT."""
    frame = pd.read_parquet(path)
    return pd.DataFrame({"article_id": "abp-" + frame["ID"].astype(str), "outlet": frame["source"].str.lower(),
                         "day": pd.to_datetime(frame["date"].replace("", None), errors="coerce"),
                         "title": frame["title"].fillna(""), "text": frame["content_original"].fillna(""),
                         "event": None, "relative_stance": None, "leaning": frame["bias_text"]})


def same_period(abp: pd.DataFrame, basil: pd.DataFrame, *, days: int = NEAR_DAYS) -> pd.DataFrame:
    """The rows of `abp` dated within `days` days of some BASIL article."""
    basil_days = np.unique(basil["day"].to_numpy(dtype="datetime64[D]").astype(np.int64))
    dated = abp["day"].notna().to_numpy()
    own = abp["day"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    near = np.zeros(len(abp), dtype=bool)
    near[dated] = (np.abs(own[dated, None] - basil_days[None, :]) <= days).any(axis=1)
    return abp[near].reset_index(drop=True)


def cached_vectors(articles: pd.DataFrame, path: Path) -> np.ndarray:
    """Topic vectors of `articles` (title + lead), from `path` when it holds the same ids, else embedded now."""
    ids = articles["article_id"].to_numpy(dtype=str)
    if path.exists():
        stored = np.load(path, allow_pickle=False)
        if np.array_equal(stored["article_ids"], ids):
            return stored["vectors"]
    import torch

    from opensentiment_pipeline.core.model import modeling
    from opensentiment_pipeline.core.vectors import encoding

    torch.set_num_threads(1)
    encoder = modeling.load_encoder("packaged:all-MiniLM-L6-v2", num_layers=None)
    tokenizer = modeling.load_tokenizer("packaged:all-MiniLM-L6-v2")
    texts = (articles["title"] + "\n\n" + articles["text"]).tolist()
    start = time.perf_counter()
    vectors = encoding.encode_texts(encoder, tokenizer, texts, batch_size=32, max_length=MAX_LENGTH, device="cpu",
                                    max_chunks=1)
    log.info("embedded %d texts in %.0f s", len(texts), time.perf_counter() - start)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, article_ids=ids, vectors=vectors)
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True, help="folder of the cached vectors")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    basil = read_basil()
    cached_vectors(basil, args.cache / "basil.npz")
    cached_vectors(same_period(read_abp(), basil), args.cache / "abp_near.npz")


if __name__ == "__main__":
    main()
