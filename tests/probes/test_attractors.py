import numpy as np
import pytest
import torch
from torch import nn

import geoprobe
from geoprobe.probes.attractors import iterate_map, merge_endpoints


def _linear_ae(d=12, k=2, contraction=0.6, seed=0):
    """E(D(z)) = A z + c with A = contraction * rotation: one attractor z* = (I - A)^-1 c."""
    g = torch.Generator().manual_seed(seed)
    M, _ = torch.linalg.qr(torch.randn(d, k, generator=g))
    theta = 0.7
    R = torch.tensor([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]],
                     dtype=torch.float32) if k == 2 else torch.eye(k)
    A = contraction * R
    dec, enc = nn.Linear(k, d), nn.Linear(d, k)
    with torch.no_grad():
        dec.weight.copy_(M)
        dec.bias.copy_(torch.randn(d, generator=g))
        enc.weight.copy_(A @ M.T)
        enc.bias.copy_(torch.randn(k, generator=g))
    c = (A @ M.T @ dec.bias + enc.bias).detach().numpy()
    z_star = np.linalg.solve(np.eye(k) - A.numpy(), c)
    return enc, dec, z_star


def _inputs(n=120, d=12, seed=1):
    rng = np.random.default_rng(seed)
    split = np.where(np.arange(n) < n // 2, "train", "test")
    return geoprobe.EmbeddingSet(rng.standard_normal((n, d)).astype(np.float32),
                                 {"split": split})


def test_linear_autoencoder_fixed_point_found():
    enc, dec, z_star = _linear_ae()
    probe = geoprobe.make_probe("latent-attractors", n_noise=50, grid_size=10, n_boot=50,
                                random_init_control=False)
    r = probe.run(_inputs(), model=(enc, dec), seed=0, progress=False)
    assert r.metric("n_attractors").value == 1
    np.testing.assert_allclose(r.arrays["attractor_xy"][0], z_star, atol=1e-3)
    assert r.metric("spectral_radius").value == pytest.approx(0.6, abs=1e-4)
    for start in ("data", "noise", "grid"):
        assert r.metric("converged_share", start=start).value == 1.0
    assert r.metric("noise_to_data_share").value == 1.0
    # For a linear contraction, steps grow with log distance: strongly correlated.
    assert r.metric("steps_distance_pearson").value > 0.5
    assert (r.arrays["grid_labels"] == 0).all()


class _Tanh(nn.Module):
    """encode = tanh(2x) elementwise, decode = identity: attractors at (+-a, +-a)."""

    input_shape = (2,)

    def encode(self, x):
        return torch.tanh(2 * x)

    def decode(self, z):
        return z


def test_four_planted_attractors_and_merge_sensitivity():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2)).astype(np.float32)
    r = geoprobe.make_probe("latent-attractors", n_noise=100, grid_size=12, n_boot=50,
                            random_init_control=False).run(
        geoprobe.EmbeddingSet(X), model=_Tanh(), seed=0, progress=False)
    assert r.metric("n_attractors").value == 4
    a = np.sort(np.abs(r.arrays["attractor_xy"]).ravel())
    fixed = 0.9575040240  # root of tanh(2a) = a
    np.testing.assert_allclose(a, fixed, atol=1e-3)
    assert r.metric("n_attractors_sensitivity", rule="cosine > 0.99").value == 4
    counts = [r.metric("n_attractors_sensitivity", rule=f"euclidean x{c}").value
              for c in ("0.1", "0.3", "1", "3", "10")]
    assert counts[2] == 4 and counts == sorted(counts, reverse=True)


def test_memorizing_decoder_has_memorization_one():
    emb = _inputs()
    x0 = torch.as_tensor(emb.layer(0)[0])
    enc = lambda x: 0.5 * (x - x0)[:, :3]  # noqa: E731
    dec = lambda z: x0 + torch.nn.functional.pad(z, (0, 9))  # noqa: E731
    r = geoprobe.make_probe("latent-attractors", n_noise=20, n_boot=50).run(
        emb, model=(enc, dec), seed=0, progress=False)
    assert r.metric("n_attractors").value == 1
    assert r.metric("memorization").value == pytest.approx(1.0, abs=1e-6)
    assert r.metric("memorization_gap").value > 0.1
    assert r.metric("memorization", baseline="test-to-train").value < 0.9


def test_iterate_and_merge_helpers():
    Z0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    Z, steps, conv = iterate_map(lambda z: 0.5 * z, Z0, tol=1e-12, max_steps=5)
    assert not conv.any() and (steps == 5).all()
    np.testing.assert_allclose(Z.numpy(), Z0.numpy() / 32)
    pts = np.concatenate([np.zeros((5, 2)), np.ones((2, 2)), np.full((3, 2), 5.0)])
    pts += 1e-4 * np.random.default_rng(0).standard_normal(pts.shape)
    labels = merge_endpoints(pts, 0.1)
    np.testing.assert_array_equal(labels, [0] * 5 + [2] * 2 + [1] * 3)


def test_conv_autoencoder_end_to_end():
    from geoprobe.autoencoders import train_autoencoder
    from geoprobe.datasets.shapes import shape_image_set

    torch.set_num_threads(1)
    emb = shape_image_set(n_train=32, n_test=32, seed=0)
    images = emb.layer(0).reshape(-1, 16, 16)
    model = train_autoencoder(images[:32], latent_dim=2, steps=30, seed=0)
    r = geoprobe.make_probe("latent-attractors", n_noise=30, grid_size=8, max_steps=100,
                            n_boot=50).run(emb, model=model, seed=0, progress=False)
    assert r.metric("n_fixed_points").value >= 1
    assert 0 < r.metric("memorization").value <= 1
    assert r.metric("n_fixed_points", baseline="random-init").value >= 1
    assert r.arrays["attractor_images"].shape[1:] == (16, 16)
    assert len(r.plot().axes) == 6
    _check_family_figure([(k, wd, r) for k in (2, 4) for wd in (0.0, 1e-3)])
    again = geoprobe.make_probe("latent-attractors", n_noise=30, grid_size=8, max_steps=100,
                                n_boot=50).run(emb, model=model, seed=0, progress=False)
    assert [m.value for m in again.metrics] == pytest.approx([m.value for m in r.metrics],
                                                             nan_ok=True)


def _check_family_figure(runs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from geoprobe.probes.attractors import plot_family

    fig = plot_family(runs)
    FigureCanvasAgg(fig).draw()
    # one legend under the panels, none inside an axes (it covered intervals there)
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    ax_mem, _, ax_n = fig.axes
    # plain bottleneck sizes and counts, not 2^1 or 4 x 10^0
    assert [t.get_text() for t in ax_mem.get_xticklabels()] == ["2", "4"]
    assert all("times" not in t.get_text() and "^" not in t.get_text()
               for t in ax_n.get_yticklabels())
    # the two decays' points sit apart at each k, so their intervals do not overlap
    first, second = (bars.lines[0].get_xdata() for bars in ax_mem.containers)
    assert np.all(first < second)


def test_rejects_model_without_maps():
    with pytest.raises(geoprobe.ProbeInputError, match="encode"):
        geoprobe.make_probe("latent-attractors").run(_inputs(), model=object(), seed=0,
                                                     progress=False)


class _FakeWorldModel:
    """The WorldModel interface with P(z_1..z_3, a) = 0.5 z_3 + 0.2 z_2 + a W: under a fixed
    action the window map has the unique fixed point z* = a W / 0.3."""

    history = 3

    def __init__(self, dim=4, seed=0):
        self.W = np.random.default_rng(seed).standard_normal((2, dim))

    def predict(self, z, actions):
        return 0.5 * z[:, -1] + 0.2 * z[:, -2] + actions[:, -1] @ self.W


def test_world_model_predictor_fixed_point():
    from geoprobe.probes.attractors import predictor_fixed_points

    wm = _FakeWorldModel()
    action = np.array([0.3, -0.1])
    starts = np.random.default_rng(1).standard_normal((50, 4))
    out = predictor_fixed_points(wm, action, starts, tol=1e-10)
    assert len(out["fixed_points"]) == 1 and out["converged"].all()
    np.testing.assert_allclose(out["fixed_points"][0], action @ wm.W / 0.3, atol=1e-4)
    # The window map's Jacobian is the companion matrix of x^3 = 0.5 x^2 + 0.2 x (per dim).
    roots = np.roots([1, -0.5, -0.2, 0])
    assert out["spectral_radius"][0] == pytest.approx(np.abs(roots).max(), abs=1e-3)
    with pytest.raises(geoprobe.ProbeInputError, match="starts"):
        predictor_fixed_points(wm, action, np.zeros((5, 2, 4)))


def test_world_model_predictor_without_fixed_point():
    from geoprobe.probes.attractors import predictor_fixed_points

    class Drift(_FakeWorldModel):
        def predict(self, z, actions):  # pure drift: z grows without bound, never settles
            return z[:, -1] + 1.0

    out = predictor_fixed_points(Drift(), np.zeros(2), np.zeros((5, 4)), max_steps=20)
    assert len(out["fixed_points"]) == 0 and not out["converged"].any()


def test_rejects_wrong_input_shape():
    enc, dec, _ = _linear_ae()
    with pytest.raises(geoprobe.ProbeInputError, match="input_shape"):
        geoprobe.make_probe("latent-attractors", input_shape=(1, 5, 5)).run(
            _inputs(), model=(enc, dec), seed=0, progress=False)


def test_device_is_checked_and_the_callers_model_never_moves():
    from geoprobe.probes.attractors import _on_device

    enc, dec, _ = _linear_ae()
    with pytest.raises(geoprobe.GeoprobeError, match="device 'cuda:99' is not available"):
        geoprobe.make_probe("latent-attractors", n_noise=5, grid_size=2, n_boot=10,
                            device="cuda:99").run(_inputs(), model=(enc, dec), seed=0,
                                                  progress=False)
    assert _on_device((enc, dec), torch.device("cpu")) == (enc, dec)   # no copy on the CPU
    moved = _on_device((enc, dec), torch.device("meta"))                # any other device
    assert all(p.is_meta for m in moved for p in m.parameters())
    assert not any(p.is_meta for m in (enc, dec) for p in m.parameters())
