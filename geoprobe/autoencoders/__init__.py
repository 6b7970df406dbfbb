"""A small convolutional autoencoder family, trained here on generated images (CPU, seconds).

Used by the ``latent-attractors`` probe to show how the bottleneck size and weight decay move
an autoencoder between memorizing its training images and generalizing (Fumero et al. 2025
train 30 such models on MNIST / CIFAR for 500 epochs; ours are tiny on purpose).

    from geoprobe.autoencoders import ConvAutoencoder, train_autoencoder
    model = train_autoencoder(images, latent_dim=8, weight_decay=1e-3, seed=0)
    z = model.encode(x); x_hat = model.decode(z)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from geoprobe.stats import preserves_torch_rng


class ConvAutoencoder(nn.Module):
    """Conv encoder 16x16 -> 8x8 -> 4x4 -> latent_dim, and its transposed decoder.

    Input and output have shape (batch, 1, size, size) with size divisible by 4; the
    decoder ends in a sigmoid (pixels in [0, 1]).
    """

    def __init__(self, latent_dim: int = 8, size: int = 16, width: int = 16):
        super().__init__()
        self.latent_dim = latent_dim
        self.input_shape = (1, size, size)
        cells = width * 2 * (size // 4) ** 2
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(cells, latent_dim))
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, cells), nn.ReLU(),
            nn.Unflatten(1, (2 * width, size // 4, size // 4)),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


@preserves_torch_rng
def train_autoencoder(images: np.ndarray, latent_dim: int = 8, weight_decay: float = 0.0,
                      steps: int = 1500, batch_size: int = 64, lr: float = 2e-3,
                      seed: int = 0) -> ConvAutoencoder:
    """Train a :class:`ConvAutoencoder` with Adam on MSE.

    images : ndarray of shape (n, size, size) or (n, 1, size, size), values in [0, 1].
    weight_decay : L2 penalty of Adam (coupled, as ``torch.optim.Adam``), the regularizer
        swept by the family.
    Returns the model in eval mode.
    """
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim == 3:
        x = x[:, None]
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = ConvAutoencoder(latent_dim, size=x.shape[-1])
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        batch = x[torch.randint(0, len(x), (min(batch_size, len(x)),), generator=gen)]
        loss = torch.mean((model(batch) - batch) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def reconstruction_error(model: ConvAutoencoder, images: np.ndarray) -> float:
    """Mean squared error per pixel of ``model`` on images (n, size, size)."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim == 3:
        x = x[:, None]
    with torch.no_grad():
        return float(torch.mean((model(x) - x) ** 2))
