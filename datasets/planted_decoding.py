"""A generated embedding set whose linear decodability is known in closed form.

Registered as the ``planted-decodability`` generator, so suites can check the
``linear-decodability`` probe against the truth.
"""

from __future__ import annotations

import numpy as np

from geoprobe.embeddings import EmbeddingSet


def planted_decodability(n_items: int = 3000, dim: int = 32, noise=(None, 2.0, 1.0, 0.25),
                         episode_length: int = 20, seed: int = 0) -> EmbeddingSet:
    """Physical state of a point in episodes, embedded with known signal-to-noise per layer.

    Each item has a state ``s = (x, y, cos theta, sin theta)``: ``x, y`` follow a random walk
    inside an episode of ``episode_length`` consecutive items (so rows of one episode are not
    independent and folds must keep episodes together), ``theta`` is uniform. Each component
    is standardized to unit variance. Layer ``i`` is ``s A_i^T + noise[i] * eps`` with ``A_i``
    of shape (dim, 4) with orthonormal columns and ``eps`` standard normal; ``noise = None``
    gives a layer of pure noise (no signal).

    Truth: the population R^2 of the best linear decoder of each state component from layer
    ``i`` is ``1 / (1 + noise[i]^2)`` (0 for a pure-noise layer), recorded in the provenance
    as ``true_r2``. ``region`` (the quadrant of ``(x, y)``) is a 4-class label.

    Returns an EmbeddingSet of shape (len(noise), n_items, dim) with columns ``item_id``,
    ``episode``, ``x``, ``y``, ``theta`` (radians) and ``region``.
    """
    rng = np.random.default_rng(seed)
    episode = np.arange(n_items) // episode_length
    steps = rng.standard_normal((n_items, 2))
    starts = np.r_[0, np.flatnonzero(np.diff(episode)) + 1]
    walk = np.cumsum(steps, axis=0)
    walk -= np.repeat(walk[starts] - steps[starts], np.diff(np.r_[starts, n_items]), axis=0)
    walk += 3.0 * rng.standard_normal((episode.max() + 1, 2))[episode]
    xy = (walk - walk.mean(0)) / walk.std(0)
    theta = rng.uniform(-np.pi, np.pi, n_items)
    S = np.c_[xy, np.sqrt(2) * np.cos(theta), np.sqrt(2) * np.sin(theta)]
    layers, names, truth = [], [], []
    for sigma in noise:
        if sigma is None:
            layers.append(rng.standard_normal((n_items, dim)))
            names.append("noise")
            truth.append(0.0)
            continue
        A, _ = np.linalg.qr(rng.standard_normal((dim, 4)))
        layers.append(S @ A.T + sigma * rng.standard_normal((n_items, dim)))
        names.append(f"snr{1 / sigma ** 2:g}")
        truth.append(1.0 / (1.0 + sigma ** 2))
    region = np.where(xy[:, 0] > 0, "E", "W").astype("<U2")
    region = np.char.add(np.where(xy[:, 1] > 0, "N", "S"), region)
    items = {"item_id": np.char.add("p", np.arange(n_items).astype(str)), "episode": episode,
             "x": xy[:, 0], "y": xy[:, 1], "theta": theta, "region": region}
    provenance = {"model": "generated:planted-decodability", "true_r2": dict(zip(names, truth)),
                  "generator": {"name": "planted-decodability", "n_items": n_items, "dim": dim,
                                "noise": list(noise), "episode_length": episode_length,
                                "seed": seed}}
    return EmbeddingSet(np.stack(layers).astype(np.float32), items, provenance=provenance,
                        layer_names=names, source="generated:planted-decodability")
