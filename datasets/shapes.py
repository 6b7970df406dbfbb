"""Small generated grayscale images of simple shapes, for training tiny autoencoders on CPU.

Each image (``size`` x ``size``, values in [0, 1]) holds one shape, a disk, a square or a
ring, at a random centre with a random radius and intensity, drawn with soft (one-pixel)
edges so that nearby parameters give nearby images. The true parameters are returned with
the pixels, so a probe can check what a latent space encodes.
"""

from __future__ import annotations

import numpy as np

from geoprobe.embeddings import EmbeddingSet

SHAPES = ("disk", "square", "ring")


def shape_images(n: int = 512, size: int = 16, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Images of shape (n, size, size) float32 and their parameters (dict of (n,) arrays)."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, len(SHAPES), n)
    radius = rng.uniform(0.15, 0.32, n) * size
    cx = rng.uniform(radius, size - radius)
    cy = rng.uniform(radius, size - radius)
    intensity = rng.uniform(0.5, 1.0, n)
    grid = np.arange(size) + 0.5
    dx = grid[None, None, :] - cx[:, None, None]
    dy = grid[None, :, None] - cy[:, None, None]
    r = radius[:, None, None]
    disk = np.hypot(dx, dy) - r
    square = np.maximum(np.abs(dx), np.abs(dy)) - r
    ring = np.abs(np.hypot(dx, dy) - 0.7 * r) - 0.3 * r
    signed = np.select([kind[:, None, None] == i for i in range(3)], [disk, square, ring])
    images = intensity[:, None, None] * np.clip(0.5 - signed, 0.0, 1.0)
    params = {"shape": np.array(SHAPES)[kind], "x": cx, "y": cy, "radius": radius,
              "intensity": intensity}
    return images.astype(np.float32), params


def shape_image_set(n_train: int = 256, n_test: int = 256, size: int = 16,
                    seed: int = 0) -> EmbeddingSet:
    """Flattened images as an EmbeddingSet of shape (1, n_train + n_test, size * size).

    Columns: ``split`` (train / test) and the true parameters ``shape``, ``x``, ``y``,
    ``radius``, ``intensity``. The provenance records ``input_shape = [1, size, size]``.
    """
    images, params = shape_images(n_train + n_test, size, seed)
    split = np.where(np.arange(n_train + n_test) < n_train, "train", "test")
    items = {"item_id": np.char.add("img", np.arange(len(split)).astype(str)),
             "split": split, **params}
    provenance = {"model": "generated:shape-images", "input_shape": [1, size, size],
                  "generator": {"name": "shape-images", "n_train": n_train, "n_test": n_test,
                                "size": size, "seed": seed}}
    return EmbeddingSet(images.reshape(len(split), -1)[None], items, provenance=provenance,
                        layer_names=["pixels"], source="generated:shape-images")
