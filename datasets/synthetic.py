"""Generated embedding sets with planted structure whose true answer is known.

Each generator returns an :class:`~geoprobe.EmbeddingSet` and takes a ``seed``; the same seed
gives the same array bit for bit. They are registered in the ``geoprobe.generators`` entry-point
group, so a suite can name them with ``generate = "..."``.
"""

from __future__ import annotations

import numpy as np

from geoprobe.embeddings import EmbeddingSet


def planted_spectrum(n_items: int = 2000, dim: int = 64, ranks=(64, 16, 4, 1),
                     noise: float = 1e-3, episode_length: int = 20, layer_names=None,
                     seed: int = 0) -> EmbeddingSet:
    """One layer per entry of ``ranks``: an isotropic Gaussian in a random ``rank``-dimensional
    subspace of R^dim, plus isotropic noise of standard deviation ``noise``.

    RankMe of layer ``i`` is close to ``ranks[i]`` (a little below, from finite-sample spread
    of the singular values). Rows come in episodes of ``episode_length`` consecutive items (the
    ``episode`` column) that share a random offset of scale 0.1 inside the subspace, so
    resampling by episode is the honest bootstrap.

    Layers are named ``rank<k>`` unless ``layer_names`` gives names (to stand in for a
    checkpoint whose layers have fixed names).

    Returns an EmbeddingSet of shape (len(ranks), n_items, dim) with columns ``item_id``,
    ``episode`` and ``true_rank`` (the planted rank of the last layer, for reference).
    """
    rng = np.random.default_rng(seed)
    episodes = np.arange(n_items) // episode_length
    layers, names = [], []
    for rank in ranks:
        if not 1 <= rank <= dim:
            raise ValueError(f"rank {rank} outside [1, {dim}]")
        basis, _ = np.linalg.qr(rng.standard_normal((dim, rank)))
        latent = rng.standard_normal((n_items, rank))
        latent += 0.1 * rng.standard_normal((episodes.max() + 1, rank))[episodes]
        X = latent @ basis.T + noise * rng.standard_normal((n_items, dim))
        layers.append(X.astype(np.float32))
        names.append(f"rank{rank}")
    items = {"item_id": np.char.add("i", np.arange(n_items).astype(str)),
             "episode": episodes, "true_rank": np.full(n_items, ranks[-1])}
    provenance = {"model": "generated:planted-spectrum",
                  "generator": {"name": "planted-spectrum", "n_items": n_items, "dim": dim,
                                "ranks": list(ranks), "noise": noise,
                                "episode_length": episode_length, "layer_names": layer_names,
                                "seed": seed}}
    if layer_names is not None:
        names = list(layer_names)
    return EmbeddingSet(np.stack(layers), items, provenance=provenance, layer_names=names,
                        source="generated:planted-spectrum")
