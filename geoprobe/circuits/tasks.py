"""Algorithmic next-token tasks with one answer token per sequence.

Every task draws ``n`` sequences of ``length`` tokens from one shared vocabulary
(:data:`VOCAB`) and the token that must come next; the task loss is the cross-entropy of
that token at the last position (a binary choice between two closers in each task, as in
the paper's hand-built Python tasks).

* ``quote``: an opening quote (``'`` or ``"``), then letters; next is the same quote.
* ``bracket``: a random walk of opening and closing brackets (``(`` ``[``, nesting at
  most ``max_depth``) and letters that ends inside at least one open bracket; next is the
  closer of the innermost open bracket, so the model must track the nesting.
* ``close-last``: letters, then one opening bracket at the last position; next is its
  closer (solvable from the last token alone: the task of the hand-built planted model).
"""

from __future__ import annotations

import numpy as np

VOCAB = ("'", '"', "(", ")", "[", "]", "a", "b", "c", "d", "e", "f", "g", "h")
TOKEN = {t: i for i, t in enumerate(VOCAB)}
LETTERS = np.array([TOKEN[c] for c in "abcdefgh"])
OPENERS = np.array([TOKEN["("], TOKEN["["]])
CLOSERS = np.array([TOKEN[")"], TOKEN["]"]])


def quote(n: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Returns tokens (n, length) and targets (n,), both int64."""
    kind = rng.integers(0, 2, n)
    tokens = rng.choice(LETTERS, size=(n, length))
    tokens[:, 0] = kind  # the quote tokens are 0 and 1
    return tokens.astype(np.int64), kind.astype(np.int64)


def bracket(n: int, length: int, rng: np.random.Generator, max_depth: int = 3
            ) -> tuple[np.ndarray, np.ndarray]:
    """Returns tokens (n, length) and targets (n,), both int64."""
    tokens = np.empty((n, length), np.int64)
    stack = np.zeros((n, max_depth), np.int64)  # bracket kinds (0 round, 1 square)
    depth = np.zeros(n, np.int64)
    rows = np.arange(n)
    for t in range(length):
        # the last position must leave a bracket open; earlier ones open, close or fill
        left = length - t
        u = rng.random(n)
        must_open = (depth == 0) & (left == 1)
        opening = must_open | ((depth < max_depth) & (u < 0.35))
        closing = ~opening & (depth > 0) & (u < 0.7) & ~((depth == 1) & (left == 1))
        kind = rng.integers(0, 2, n)
        tokens[:, t] = rng.choice(LETTERS, size=n)
        tokens[opening, t] = OPENERS[kind[opening]]
        stack[rows[opening], depth[opening]] = kind[opening]
        depth[opening] += 1
        top = stack[rows, np.maximum(depth - 1, 0)]
        tokens[closing, t] = CLOSERS[top[closing]]
        depth[closing] -= 1
    targets = CLOSERS[stack[rows, depth - 1]]
    return tokens, targets


def close_last(n: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Returns tokens (n, length) and targets (n,), both int64."""
    kind = rng.integers(0, 2, n)
    tokens = rng.choice(LETTERS, size=(n, length)).astype(np.int64)
    tokens[:, -1] = OPENERS[kind]
    return tokens, CLOSERS[kind].astype(np.int64)


TASKS = {"quote": quote, "bracket": bracket, "close-last": close_last}


def make_task(name: str, n: int, length: int, seed) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sequences of task ``name`` drawn with ``seed``: tokens (n, length), targets (n,)."""
    if name not in TASKS:
        raise ValueError(f"unknown circuit task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name](n, length, np.random.default_rng(seed))
