"""Strip what identifies an outlet rather than what an article says: bylines, datelines, recurring footers.

A leaning probe validated on held-out outlets can still win by recognising house style: "CITY (Reuters) -",
"Copyright 2019 The Washington Times, LLC", "Enlarge this image toggle caption", the outlet's own name. Two
generic rules remove it, with no list of outlets:

- **recurring lines**: a paragraph (or, for short paragraphs, its first `prefix_words` words) that recurs in at
  least `min_share` of one outlet's articles, and in at least `min_count` of them, is boilerplate of that
  outlet; so are the outlet's own name and its words' run in the text (e.g. "The Washington Times").
- **patterns**: byline lines ("By Jane Doe", "By JANE DOE, Associated Press"), leading datelines
  ("WASHINGTON (Reuters) -", "NEW YORK —"), and lines naming the publication apparatus (copyright, "contributed
  to this report", "Sign up for", "Click here", "Follow us", "Read more", image captions and credits).

Nothing here knows an outlet by name, and the recurrence rule adapts to outlets it has never seen.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

_BYLINE = re.compile(r"^\s*(by|written by|story by|words by)\s+[A-Z][\w.'’-]*(\s+(and\s+)?[A-Z][\w.'’-]*){0,5}"
                     r"\s*(,.{0,60})?$", re.IGNORECASE)
# "WASHINGTON (Reuters) - ", "NEW YORK, June 3 (AP) — ", "LONDON — ", "(CNN) -- "
_DATELINE = re.compile(r"^\s*(([A-Z][A-Z.'’-]+(\s+[A-Z][A-Z.'’-]+){0,3})(,\s*[A-Z][\w.]*(\s+\d{1,2})?)?\s*)?"
                       r"(\([^)]{1,40}\)\s*)?(-{1,2}|—|–)\s+")
_APPARATUS = re.compile(
    r"copyright|©|all rights reserved|contributed to this report|sign up for|click here|follow (us|him|her|them)"
    r"|read more|related:|advertisement|subscribe|newsletter|toggle caption|image caption|getty images|"
    r"photo:|photograph:|image:|\(photo|reprint permission|this story (was|has been) (updated|corrected)",
    re.IGNORECASE)
_APPARATUS_MAX_WORDS = 30  # longer paragraphs that mention "subscribe" are prose, not apparatus
_SPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")


def strip_boilerplate(texts: Sequence[str], groups: Sequence[str], *, min_share: float, min_count: int,
                      prefix_words: int = 4, recurring: Mapping[str, set[str]] | None = None) -> list[str]:
    """`texts` with boilerplate paragraphs and phrases removed; paragraphs are separated by newlines.

    Args:
        texts: article bodies (or title + body); one per article.
        groups: the outlet of each text (any string; only equality is used), so recurrence is counted within
            an outlet and the outlet's own name can be removed.
        min_share: a paragraph recurring in at least this fraction of its outlet's articles is boilerplate.
        min_count: ...and in at least this many of them (so two articles never make a rule).
        prefix_words: short paragraphs (< 3 * prefix_words words) are also matched on their first words, so
            "Enlarge this image toggle caption <photographer>" is caught whatever the credit.
        recurring: each outlet's recurring paragraphs as `recurring_paragraphs` found them on other texts (an
            incremental reader learns them once on a sample and strips each new day alike); None = found on
            `texts`. An outlet missing from it has none.

    Returns:
        The stripped texts, in order; a text left empty by stripping keeps its first paragraph, so an article
        never disappears.

    >>> strip_boilerplate(["WASHINGTON (Reuters) - Senate votes.\\nBy Jane Doe"], ["wire"], min_share=0.5,
    ...                   min_count=2)
    ['Senate votes.']
    """
    if isinstance(texts, str) or len(texts) != len(groups):
        raise ValueError(f"texts and groups must be sequences of equal length; got {type(texts).__name__} of "
                         f"{len(texts)} and {len(groups)} groups")
    if not 0 < min_share <= 1 or min_count < 2:
        raise ValueError(f"min_share must be in (0, 1] and min_count >= 2; got {min_share} and {min_count}")
    groups = [str(g) for g in groups]
    paragraphs = [[p.strip() for p in str(t).splitlines() if p.strip()] for t in texts]
    if recurring is None:
        recurring = _recurring_keys(paragraphs, groups, min_share=min_share, min_count=min_count,
                                    prefix_words=prefix_words)
    stripped = []
    for paras, group in zip(paragraphs, groups):
        name = _name_pattern(group)
        own = recurring.get(group, set())
        kept = []
        for para in paras:
            if _is_apparatus(para) or any(k in own for k in _keys(para, prefix_words)):
                continue
            para = _DATELINE.sub("", para, count=1)
            if name is not None:
                para = _SPACE.sub(" ", name.sub(" ", para)).strip()
            if para:
                kept.append(para)
        stripped.append("\n".join(kept) if kept else (paras[0] if paras else ""))
    return stripped


def recurring_paragraphs(texts: Sequence[str], groups: Sequence[str], *, min_share: float, min_count: int,
                         prefix_words: int = 4) -> dict[str, set[str]]:
    """{outlet: keys of its recurring paragraphs} under `strip_boilerplate`'s rule, to pass it as `recurring`."""
    if not 0 < min_share <= 1 or min_count < 2:
        raise ValueError(f"min_share must be in (0, 1] and min_count >= 2; got {min_share} and {min_count}")
    paragraphs = [[p.strip() for p in str(t).splitlines() if p.strip()] for t in texts]
    return _recurring_keys(paragraphs, [str(g) for g in groups], min_share=min_share, min_count=min_count,
                           prefix_words=prefix_words)


def _recurring_keys(paragraphs: list[list[str]], groups: list[str], *, min_share: float, min_count: int,
                    prefix_words: int) -> dict[str, set[str]]:
    counts: dict[str, Counter] = {}
    sizes = Counter(groups)
    for paras, group in zip(paragraphs, groups):
        keys = {k for p in paras for k in _keys(p, prefix_words)}  # once per article
        counts.setdefault(group, Counter()).update(keys)
    threshold = {g: max(min_count, int(np.ceil(min_share * n))) for g, n in sizes.items()}
    return {g: {k for k, c in counts.get(g, Counter()).items() if c >= threshold[g]} for g in sizes}


def _keys(paragraph: str, prefix_words: int) -> list[str]:
    """The paragraph itself (case, digits and spacing folded) and, for a short one, its first words."""
    folded = _DIGITS.sub("0", _SPACE.sub(" ", paragraph.lower())).strip()
    words = folded.split(" ")
    keys = [f"p:{folded}"]
    if len(words) < 3 * prefix_words and len(words) > prefix_words:
        keys.append(f"w:{' '.join(words[:prefix_words])}")
    return keys


def _is_apparatus(paragraph: str) -> bool:
    words = paragraph.split()
    if len(words) <= 12 and _BYLINE.match(paragraph):
        return True
    return len(words) <= _APPARATUS_MAX_WORDS and bool(_APPARATUS.search(paragraph))


def _name_pattern(group: str) -> re.Pattern | None:
    """The outlet's own full name as it appears in prose ("the Washington Times", "washington-times"), if it
    has a distinctive word; a name of generic words alone ("Daily News") is not removed."""
    words = [w for w in re.split(r"[\s_()-]+", group.lower()) if w]
    if not any(len(w) >= 3 and w not in _GENERIC_NAME_WORDS for w in words):
        return None
    return re.compile(r"\b(the\s+)?" + r"[\s_-]*".join(re.escape(w) for w in words) + r"\b", re.IGNORECASE)


_GENERIC_NAME_WORDS = frozenset({"news", "online", "web", "the", "daily", "media", "com", "www", "opinion", "blog",
                                 "magazine", "post", "times", "journal", "report", "network", "radio", "tv"})
