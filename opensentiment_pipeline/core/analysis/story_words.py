"""Words that set one group of texts apart from another: log-odds with an informative Dirichlet prior.

Monroe, Colaresi & Quinn (2008), "Fightin' Words", section 3.5.1: for word w, group i and the rest j,

    delta_w = log((y_iw + a_w) / (n_i + a0 - y_iw - a_w)) - log((y_jw + a_w) / (n_j + a0 - y_jw - a_w))
    var_w ~= 1 / (y_iw + a_w) + 1 / (y_jw + a_w),   z_w = delta_w / sqrt(var_w)

with the prior a_w = a0 x the word's share of a background corpus. Unlike raw counts or frequency ratios, rare
words do not dominate (the prior shrinks them) and frequent words are not all that shows (z divides by the
evidence), so the top words by z are the ones a group uses markedly more than the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TOKEN_PATTERN = r"(?u)\b[^\W\d_][^\W\d_]{2,}\b"  # words of 3+ letters: numbers and 2-letter tokens say little here


def word_counter(texts: Sequence[str]):
    """A fitted scikit-learn CountVectorizer (lower-cased, English stop words out) and the counts of `texts`."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(lowercase=True, stop_words="english", token_pattern=TOKEN_PATTERN)
    counts = vectorizer.fit_transform(list(texts))
    return vectorizer, counts


def log_odds_z(group: np.ndarray, rest: np.ndarray, background: np.ndarray, *, prior_strength: float) -> np.ndarray:
    """Monroe et al.'s z-scores of each word for `group` against `rest` (count vectors over one vocabulary), with
    the informative prior `prior_strength` x the word's share of `background` (counts; every word > 0 there).

    Example: with a background of [10, 10] and group [5, 0] against rest [0, 5], word 0 gets z > 0 and word 1 z < 0.
    """
    group, rest, background = (np.asarray(a, dtype=np.float64) for a in (group, rest, background))
    if not group.shape == rest.shape == background.shape:
        raise ValueError(f"group, rest and background must share one vocabulary; got shapes {group.shape}, "
                         f"{rest.shape}, {background.shape}")
    if prior_strength <= 0 or background.sum() <= 0:
        raise ValueError(f"prior_strength must be > 0 and the background non-empty; got {prior_strength}, "
                         f"{background.sum()} background words")
    alpha = _alpha(background, prior_strength)  # floored: a word absent from the background would divide by zero
    return _z(group, rest, alpha, a0=float(alpha.sum()), n_group=group.sum(), n_rest=rest.sum())


def group_words(counts, groups: Sequence[str], vocabulary: np.ndarray, prior: np.ndarray, *, top_k: int,
                prior_strength: float, min_z: float) -> dict[str, list[str]]:
    """For each group of rows of `counts` (a documents x vocabulary count matrix), the `top_k` words it uses most
    markedly more than the other groups pooled (z >= `min_z`), highest z first; `prior` are the background counts
    behind the informative prior. With a single group there is nothing to compare and it gets no words."""
    groups = np.asarray([str(g) for g in groups])
    names = sorted(set(groups))
    if len(names) < 2:
        return {name: [] for name in names}
    total = np.asarray(counts.sum(axis=0)).ravel()
    used = np.flatnonzero(total)  # only words the documents use can be listed; the rest only set n and a0
    alpha = _alpha(prior + 1.0, prior_strength)
    words: dict[str, list[str]] = {}
    for name in names:
        group = np.asarray(counts[groups == name].sum(axis=0)).ravel()
        z = _z(group[used], total[used] - group[used], alpha[used], a0=prior_strength, n_group=group.sum(),
               n_rest=total.sum() - group.sum())
        order = np.argsort(-z, kind="stable")[:top_k]
        words[name] = [str(vocabulary[used[i]]) for i in order if z[i] >= min_z and group[used[i]] > 0]
    return words


def top_words(counts, vocabulary: np.ndarray, background: np.ndarray, *, top_k: int, prior_strength: float) -> list[str]:
    """The `top_k` words of the documents in `counts` (one story) most over-used against `background` (count
    vector of a corpus that contains them, e.g. every story of the night), by the same log-odds z."""
    group = np.asarray(counts.sum(axis=0)).ravel()
    used = np.flatnonzero(group)
    rest = np.maximum(background - group, 0)
    alpha = _alpha(background + 1.0, prior_strength)
    z = _z(group[used], rest[used], alpha[used], a0=prior_strength, n_group=group.sum(), n_rest=rest.sum())
    order = np.argsort(-z, kind="stable")[:top_k]
    return [str(vocabulary[used[i]]) for i in order]


def _alpha(background: np.ndarray, prior_strength: float) -> np.ndarray:
    background = np.asarray(background, dtype=np.float64)
    return np.maximum(prior_strength * background / background.sum(), 1e-9)


def _z(group, rest, alpha, *, a0: float, n_group: float, n_rest: float) -> np.ndarray:
    delta = (np.log((group + alpha) / (n_group + a0 - group - alpha))
             - np.log((rest + alpha) / (n_rest + a0 - rest - alpha)))
    return delta / np.sqrt(1.0 / (group + alpha) + 1.0 / (rest + alpha))


def distinctive_words(texts: Sequence[str], groups: Sequence[str], *, top_k: int, prior_strength: float,
                      min_z: float) -> dict[str, list[str]]:
    """`group_words` on raw texts, with the texts' own pooled counts as the prior."""
    texts = list(texts)
    if len(texts) != len(groups):
        raise ValueError(f"texts and groups differ in length: {len(texts)} vs {len(groups)}")
    try:
        vectorizer, counts = word_counter(texts)
    except ValueError:  # scikit-learn: "empty vocabulary" (only stop words or numbers): no word can stand out
        return {str(name): [] for name in sorted(set(map(str, groups)))}
    prior = np.asarray(counts.sum(axis=0)).ravel()
    return group_words(counts, groups, vectorizer.get_feature_names_out(), prior, top_k=top_k,
                       prior_strength=prior_strength, min_z=min_z)
