"""The Search page's engine: the article_index folder (FAISS + articles + manifest) and the encoder that embeds a
query, each loaded once per index build. The encoder is the only model the dashboard loads."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from opensentiment_pipeline.dashboard.store import MissingAsset


@dataclass(frozen=True)
class LoadedIndex:
    built_at: str
    manifest: dict
    index: object  # core.vectors.search.VectorIndex
    articles: pd.DataFrame  # search.index_articles columns, indexed by article_id
    positions: dict[str, int]


class SearchEngine:
    """Search the index folder `index_dir` by text or by a stored article ("more like this")."""

    def __init__(self, index_dir: Path):
        self.index_dir = Path(index_dir)
        self._lock = threading.Lock()
        self._loaded: LoadedIndex | None = None
        self._encoder: tuple[str, object, object] | None = None

    def loaded(self) -> LoadedIndex:
        """The index, reloaded when article_index has rebuilt the folder since the last call."""
        from opensentiment_pipeline.core.vectors import search

        manifest_path = self.index_dir / search.MANIFEST_FILE
        if not manifest_path.exists():
            raise MissingAsset("article_index")
        manifest = json.loads(manifest_path.read_text())
        with self._lock:
            if self._loaded is None or self._loaded.built_at != manifest.get("built_at"):
                index = search.load_index(self.index_dir)
                articles = pd.read_parquet(self.index_dir / search.ARTICLES_FILE)
                self._loaded = LoadedIndex(built_at=manifest.get("built_at"), manifest=manifest, index=index,
                                           articles=articles.set_index("article_id", drop=False),
                                           positions={i: n for n, i in enumerate(index.ids)})
            return self._loaded

    def embed(self, text: str) -> np.ndarray:
        """`(dimensions,)` vector of `text` from the encoder named in the manifest (loaded on first use)."""
        from opensentiment_pipeline.core.vectors import search

        manifest = self.loaded().manifest
        key = json.dumps({k: manifest.get(k) for k in ("adapter_dir", "base_model", "num_layers", "query_max_length")},
                         sort_keys=True)
        with self._lock:
            if self._encoder is None or self._encoder[0] != key:
                self._encoder = (key, search.query_encoder(manifest))
            return self._encoder[1].embed(text)

    def vector_of(self, article_id: str) -> np.ndarray:
        loaded = self.loaded()
        if article_id not in loaded.positions:
            raise KeyError(f"article {article_id!r} is not in the search index; it may have been rebuilt: search again")
        return loaded.index.faiss_index.reconstruct(loaded.positions[article_id])

    def search(self, vector: np.ndarray, k: int, *, outlets=None, sentiments=None, start=None, end=None,
               exclude: str | None = None) -> pd.DataFrame:
        """Top `k` articles (rank, similarity, outlet, published_at, sentiment, title, snippet) among those
        matching the filters; an empty frame when no article matches them."""
        from opensentiment_pipeline.core.vectors import search

        loaded = self.loaded()
        articles = loaded.articles
        keep = pd.Series(True, index=articles.index)
        if outlets:
            keep &= articles["outlet"].isin(outlets)
        if sentiments:
            keep &= articles["sentiment"].isin(sentiments)
        days = pd.to_datetime(articles["published_at"], utc=True).dt.strftime("%Y-%m-%d")
        if start:
            keep &= days >= str(start)[:10]
        if end:
            keep &= days <= str(end)[:10]
        if exclude is not None:
            keep &= articles["article_id"] != exclude
        filtered = not bool(keep.all())
        allowed = articles.index[keep].tolist() if filtered else None
        if filtered and not allowed:
            return pd.DataFrame()
        hits = search.search(loaded.index, vector, k, allowed_ids=allowed)
        return hits.merge(articles.reset_index(drop=True), on="article_id", how="left")
