"""What the axis reads from an article's words: the boilerplate-stripped text the TF-IDF probe sees, and the
format features the principal axes regress out."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

_SENTENCE_END = re.compile(r"[.!?]+(\s|$)")
_QUOTED = re.compile(r"[\"“][^\"“”]{1,600}[\"”]")
_FIRST_PERSON = re.compile(r"\b(i|me|my|mine|we|us|our|ours)\b", re.IGNORECASE)


def axis_texts(articles: pd.DataFrame, *, strip_min_share: float, strip_min_count: int,
               recurring: Mapping[str, set[str]] | None = None) -> list[str]:
    """Each article's "title. body" with its outlet's boilerplate removed from the body (`core.ingest.boilerplate`:
    a paragraph recurring in >= `strip_min_share` and >= `strip_min_count` of one outlet's articles).

    The TF-IDF probe and the format features read these. The vectors (`article_embeddings`) read the raw
    "title. text": boilerplate is found by recurrence over many of an outlet's articles, which one day's
    partition does not hold. Title and body are joined as everywhere (`schema.title_and_text`). `recurring`
    (`boilerplate.recurring_paragraphs` of a sample) strips a new day as its sample was stripped.
    """
    from opensentiment_pipeline.core.ingest import boilerplate
    from opensentiment_pipeline.core.schema import title_and_text

    missing = {"outlet", "title", "text"} - set(articles.columns)
    if missing:
        raise ValueError(f"articles is missing columns {sorted(missing)}; got {list(articles.columns)}")
    bodies = boilerplate.strip_boilerplate(articles["text"].fillna("").astype(str).tolist(),
                                           articles["outlet"].astype(str).tolist(), min_share=strip_min_share,
                                           min_count=strip_min_count, recurring=recurring)
    return title_and_text(articles.assign(text=bodies))


def format_features(texts: Sequence[str]) -> np.ndarray:
    """`(n, 6)` format features of each text: log characters, share of characters inside quotes, first-person
    pronouns per word, questions per sentence, digits per character, log mean sentence length (words).

    They separate columns from news reports and wires from magazines; `remove_directions` regresses them out.
    """
    rows = []
    for text in texts:
        text = str(text)
        words = max(len(text.split()), 1)
        sentences = max(len(_SENTENCE_END.findall(text)), 1)
        quoted = sum(len(m) for m in _QUOTED.findall(text))
        rows.append([np.log1p(len(text)), quoted / max(len(text), 1), len(_FIRST_PERSON.findall(text)) / words,
                     text.count("?") / sentences, sum(c.isdigit() for c in text) / max(len(text), 1),
                     np.log1p(words / sentences)])
    return np.asarray(rows, dtype=float).reshape(len(rows), 6)
