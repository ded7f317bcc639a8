"""The embedded articles joined to their raw rows (`join_articles`): what the axis reads of each article."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def join_articles(raw_articles: pd.DataFrame, article_ids: Sequence[str]) -> pd.DataFrame:
    """The raw rows (`article_id, outlet, title, text` and `leaning`, `topic` where present) of the embedded
    articles, in embedding order."""
    columns = ["article_id", "outlet", "title", "text",
               *[c for c in ("leaning", "topic") if c in raw_articles.columns]]
    articles = pd.DataFrame({"article_id": list(article_ids)}).merge(raw_articles[columns], on="article_id",
                                                                     how="left", validate="one_to_one")
    if articles["outlet"].isna().any():
        raise ValueError(f"{int(articles['outlet'].isna().sum())} embedded articles are not in raw_articles; "
                         "re-materialize article_embeddings after raw_articles")
    return articles
