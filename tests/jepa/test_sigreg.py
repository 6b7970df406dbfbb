import numpy as np
import torch

from geoprobe.sigreg import random_directions, sigreg, sigreg_reference as naive_sigreg


def test_matches_naive_transcription():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(200, 16, generator=g, dtype=torch.float64) * 1.3 + 0.2
    A = random_directions(16, 32, g, dtype=torch.float64)
    assert abs(float(sigreg(z, directions=A)) - naive_sigreg(z, A)) < 1e-9


def test_time_steps_are_averaged():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 100, 8, generator=g, dtype=torch.float64)
    A = random_directions(8, 16, g, dtype=torch.float64)
    per_t = [naive_sigreg(z[i], A) for i in range(3)]
    assert abs(float(sigreg(z, directions=A)) - np.mean(per_t)) < 1e-9


def test_small_for_gaussian_large_for_collapsed():
    g = torch.Generator().manual_seed(2)
    gauss = [float(sigreg(torch.randn(n, 32, generator=g), 256, g)) for n in (256, 2048)]
    # collapsed: every dimension a copy of one coordinate (rank 1), unit variance per dim
    collapsed = [float(sigreg(torch.randn(n, 1, generator=g).repeat(1, 32), 256, g))
                 for n in (256, 2048)]
    assert max(gauss) < 2.0            # O(1) for a sample of the target, whatever N
    assert min(collapsed) > 10 * max(gauss)
    assert collapsed[1] > 4 * collapsed[0]  # grows with N when the law is wrong


def test_directions_are_redrawn_each_call():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(64, 8, generator=g)
    assert float(sigreg(z, 4, g)) != float(sigreg(z, 4, g))
