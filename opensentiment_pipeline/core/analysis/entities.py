"""Mentions of configured entities (a name plus aliases) in sentences, and the sentiment toward each mention.

Matching is literal and case-sensitive on word boundaries: an alias counts only where the characters either side
of it are not letters, digits or underscores, so "Trump" is found in "Trump's plan" but not in "trumpet" or
"Trumpington". Longer aliases win where two overlap ("Bank of England" before "England").

Sentiment toward a mention is scored with the (target, sentence) pair input the model was trained on (NewsMTSC:
`[CLS] mention [SEP] sentence [SEP]`), through the evaluation's own scorer `training.predict_proba`.

Automatic NER is not included: no English NER model installs from PyPI with files that can be checked against
hashes its authors publish (spaCy's models are released on GitHub, not PyPI; the PyPI copies are third-party
re-uploads), so the configured list is the one source of entities.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

MENTION_COLUMNS: tuple[str, ...] = ("article_id", "sentence_idx", "entity", "mention", "start", "end", "sentence")


@dataclass(frozen=True)
class Entity:
    """A canonical name and the other strings that refer to it."""

    name: str
    aliases: tuple[str, ...] = ()

    @property
    def surface_forms(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def parse_entities(items: Sequence[Mapping[str, Any]]) -> list[Entity]:
    """Entities from config items `{"name": ..., "aliases": [...]}`; a string alias shared by two entities is
    an error, since its mentions could not be assigned.

    >>> parse_entities([{"name": "Bank of England", "aliases": ["BoE"]}])
    [Entity(name='Bank of England', aliases=('BoE',))]
    """
    entities: list[Entity] = []
    owner: dict[str, str] = {}
    for i, item in enumerate(items):
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"entity {i} has no name: {dict(item)}; each entity needs a non-empty 'name'")
        aliases = item.get("aliases", [])
        if isinstance(aliases, str) or not all(isinstance(a, str) and a.strip() for a in aliases):
            raise ValueError(f"entity {name!r}: aliases must be a list of non-empty strings; got {aliases!r}")
        unknown = set(item) - {"name", "aliases"}
        if unknown:
            raise ValueError(f"entity {name!r} has unknown keys {sorted(unknown)}; allowed: name, aliases")
        entity = Entity(name=name.strip(), aliases=tuple(dict.fromkeys(a.strip() for a in aliases if a.strip() != name.strip())))
        for form in entity.surface_forms:
            if form in owner and owner[form] != entity.name:
                raise ValueError(f"{form!r} is listed for both {owner[form]!r} and {entity.name!r}; give it to one")
            owner[form] = entity.name
        entities.append(entity)
    return entities


def find_mentions(sentences: pd.DataFrame, entities: Sequence[Entity]) -> pd.DataFrame:
    """The first mention of each entity in each sentence (`MENTION_COLUMNS`).

    `sentences` has columns article_id, sentence_idx and sentence. One row per (sentence, entity): the model
    scores the sentence once per entity, with the first surface form found as the target.

    >>> s = pd.DataFrame({"article_id": ["a"], "sentence_idx": [0], "sentence": ["The BoE held rates; the BoE said so."]})
    >>> find_mentions(s, [Entity("Bank of England", ("BoE",))])[["entity", "mention", "start"]].values.tolist()
    [['Bank of England', 'BoE', 4]]
    """
    missing = {"article_id", "sentence_idx", "sentence"} - set(sentences.columns)
    if missing:
        raise ValueError(f"sentences lack columns {sorted(missing)}; got {list(sentences.columns)}")
    if not entities:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in MENTION_COLUMNS})
    owner = {form: e.name for e in entities for form in e.surface_forms}
    # Longest first, so the regex alternation prefers "Bank of England" over "England" at the same position.
    forms = sorted(owner, key=len, reverse=True)
    pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(f) for f in forms) + r")(?!\w)")
    rows = []
    for article_id, idx, sentence in zip(sentences["article_id"], sentences["sentence_idx"], sentences["sentence"]):
        seen: set[str] = set()
        for match in pattern.finditer(sentence):
            entity = owner[match.group(1)]
            if entity not in seen:
                seen.add(entity)
                rows.append((article_id, idx, entity, match.group(1), match.start(1), match.end(1), sentence))
    return pd.DataFrame(rows, columns=list(MENTION_COLUMNS))


def score_mentions(model: Any, tokenizer: Any, mentions: pd.DataFrame, *, manifest: Any, batch_size: int,
                   device: str) -> pd.DataFrame:
    """`mentions` with p_<label> columns and `sentiment`: the model's sentiment toward each mention.

    Scored by `training.predict_proba` with target = the mention and text = its sentence. An adapter trained
    without pairs (`manifest.pair_input` false) cannot read a target: that is an error, not a quiet fallback to
    the sentence's overall sentiment.
    """
    from opensentiment_pipeline.core.model import training

    if not manifest.pair_input:
        raise ValueError("the adapter was trained without (target, sentence) pairs (pair_input: false), so it "
                         "cannot score sentiment toward an entity; train it on target-dependent data such as "
                         "NewsMTSC (rows with a `target`)")
    out = mentions.copy()
    if out.empty:
        for label in manifest.labels:
            out[f"p_{label}"] = pd.Series(dtype=np.float32)
        out["sentiment"] = pd.Series(dtype=object)
        return out
    proba = training.predict_proba(model, tokenizer, pd.DataFrame({"text": out["sentence"].to_numpy(),
                                                                   "target": out["mention"].to_numpy()}),
                                   manifest=manifest, batch_size=batch_size, device=device)
    for k, label in enumerate(manifest.labels):
        out[f"p_{label}"] = proba[:, k].astype(np.float32)
    out["sentiment"] = [manifest.labels[k] for k in proba.argmax(1)]
    return out
