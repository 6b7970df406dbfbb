import numpy as np
import pytest

from geoprobe.jepa import worlds as W
from geoprobe.errors import FormatError, GeoprobeError


@pytest.mark.parametrize("name", ["tworoom", "ball", "pendulum"])
def test_deterministic_per_seed(name):
    a = W.generate(name, n_episodes=4, steps=6, size=32, seed=3)
    b = W.generate(name, n_episodes=4, steps=6, size=32, seed=3)
    c = W.generate(name, n_episodes=4, steps=6, size=32, seed=4)
    for key in ("frames", "states", "actions"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["states"], c["states"])


@pytest.mark.parametrize("name", ["tworoom", "ball", "pendulum"])
def test_rendered_object_sits_at_true_state(name):
    d = W.generate(name, n_episodes=6, steps=5, size=64, seed=1)
    frames = d["frames"].reshape(-1, 64, 64, 3).astype(float)
    states = d["states"].reshape(len(frames), -1)
    red = W.COLOURS["red"]
    # weight = how red a pixel is (background and wall are grey-ish)
    w = np.clip(frames[..., 0] / 255 - frames[..., 2] / 255, 0, None)
    w = np.where(w > 0.2, w, 0)
    c = (np.arange(64) + 0.5) / 64
    cx = (w * c[None, None, :]).sum((1, 2)) / w.sum((1, 2))
    cy = (w * c[None, :, None]).sum((1, 2)) / w.sum((1, 2))
    assert red[0] > red[2]
    # the disc's centroid lies within a pixel of the recorded position (edges can clip it)
    err = np.hypot(cx - states[:, 0], cy - states[:, 1])
    assert np.median(err) < 1 / 64
    assert err.max() < 3 / 64


def test_tworoom_agent_never_enters_wall():
    world = W.TwoRoom()
    d = W.generate(world, n_episodes=200, steps=40, size=16, seed=0)
    s = d["states"].reshape(-1, 2)
    assert world._valid(s).all()
    # the agent does cross the door in some episodes
    x = d["states"][..., 0]
    assert ((x < 0.5).any(1) & (x > 0.5).any(1)).any()


def test_ball_keeps_speed_and_stays_inside():
    d = W.generate("ball", n_episodes=20, steps=50, size=16, seed=0)
    s = d["states"]
    speed = np.hypot(s[..., 2], s[..., 3])
    assert np.abs(speed - speed[:, :1]).max() < 1e-5
    assert (s[..., :2] >= 0.08 - 1e-6).all() and (s[..., :2] <= 0.92 + 1e-6).all()


def test_pendulum_conserves_energy():
    world = W.Pendulum()
    d = W.generate(world, n_episodes=20, steps=60, size=16, seed=0)
    ang, om = d["states"][..., 2], d["states"][..., 5]
    energy = 0.5 * om ** 2 - world.g_over_l * np.cos(ang)
    assert np.abs(energy - energy[:, :1]).max() < 0.01 * world.g_over_l


def test_voe_triplets_differ_only_where_they_should():
    world = W.TwoRoom()
    v = W.voe_episodes(world, 5, 12, 6, 32, seed=2)
    clean, tele, colour = v["frames"]
    np.testing.assert_array_equal(clean[:, :6], tele[:, :6])
    np.testing.assert_array_equal(clean[:, :6], colour[:, :6])
    np.testing.assert_array_equal(v["states"][0], v["states"][2])
    assert not np.array_equal(v["states"][0][:, 6:], v["states"][1][:, 6:])
    assert (colour[:, 6:, ..., 2].astype(int) - clean[:, 6:, ..., 2]).max() > 100


def test_dataset_roundtrip(tmp_path):
    W.write_dataset(tmp_path / "d", "tworoom", n_episodes=5, steps=4, size=16, seed=0, chunk=2)
    d = W.open_dataset(tmp_path / "d")
    assert isinstance(d["frames"], np.memmap)
    assert d["frames"].shape == (5, 4, 16, 16, 3)
    world = W.world_from_meta(d["meta"])
    np.testing.assert_array_equal(world.render(np.asarray(d["states"][:, 0]), 16),
                                  d["frames"][:, 0])
    with pytest.raises(FormatError, match="meta.json"):
        W.open_dataset(tmp_path)


def _centre_colours(d):
    """The RGB (in [0, 1]) of the pixel under each object's centre, (episodes, steps, 3): the
    disc covers that pixel fully, so it shows the object's colour unblended."""
    size = d["frames"].shape[2]
    ij = np.clip((d["states"][..., :2] * size).astype(int), 0, size - 1)
    e, t = np.indices(ij.shape[:2])
    return d["frames"][e, t, ij[..., 1], ij[..., 0]] / 255.0


def test_fixed_colours_are_the_default_and_unchanged():
    a = W.generate("tworoom", n_episodes=5, steps=4, size=32, seed=7)
    b = W.generate("tworoom", n_episodes=5, steps=4, size=32, seed=7, colours="fixed")
    for key in ("frames", "states", "actions"):
        np.testing.assert_array_equal(a[key], b[key])
    # what generate drew before the option existed: every object in the renderer's red
    np.testing.assert_array_equal(a["frames"], W.render_episodes(W.TwoRoom(), a["states"], 32))
    np.testing.assert_allclose(_centre_colours(a), np.broadcast_to(W.COLOURS["red"], (5, 4, 3)),
                               atol=1 / 255)


def test_random_episode_colours_are_constant_within_an_episode_and_seeded():
    fixed = W.generate("tworoom", n_episodes=8, steps=5, size=32, seed=3)
    a = W.generate("tworoom", n_episodes=8, steps=5, size=32, seed=3, colours="random-episode")
    again = W.generate("tworoom", n_episodes=8, steps=5, size=32, seed=3,
                       colours="random-episode")
    other = W.generate("tworoom", n_episodes=8, steps=5, size=32, seed=4,
                       colours="random-episode")
    # the same trajectories as the fixed-colour data: only the drawing differs
    np.testing.assert_array_equal(a["states"], fixed["states"])
    np.testing.assert_array_equal(a["actions"], fixed["actions"])
    np.testing.assert_array_equal(a["frames"], again["frames"])
    assert not np.array_equal(a["frames"], other["frames"])
    c = _centre_colours(a)
    # one colour per episode, held for every frame of it ...
    np.testing.assert_allclose(c, np.repeat(c[:, :1], 5, axis=1), atol=1 / 255)
    # ... and episodes differ from each other (all pairs of the 8)
    gaps = np.abs(c[:, None, 0] - c[None, :, 0]).max(-1)
    assert gaps[~np.eye(8, dtype=bool)].min() > 2 / 255
    # vivid: the colour is far from the pale background in at least one channel
    assert (np.abs(c - W.BACKGROUND).max(-1) > 0.3).all()


def test_random_frame_colours_change_every_frame():
    d = W.generate("ball", n_episodes=4, steps=6, size=32, seed=0, colours="random-frame")
    c = _centre_colours(d)
    assert (np.abs(np.diff(c, axis=1)).max(-1) > 2 / 255).all()


def test_random_colours_cover_the_hue_circle():
    rgb = W.random_colours((2000,), np.random.default_rng(0))
    assert rgb.shape == (2000, 3) and rgb.dtype == np.float32
    assert rgb.min() >= 0 and rgb.max() <= 1
    # each channel is the largest in about a third of the colours (a uniform hue)
    share = np.bincount(rgb.argmax(1), minlength=3) / 2000
    np.testing.assert_allclose(share, 1 / 3, atol=0.05)


def test_colour_mode_is_recorded_and_checked(tmp_path):
    W.write_dataset(tmp_path / "d", "tworoom", n_episodes=3, steps=4, size=16, seed=0,
                    colours="random-episode")
    assert W.open_dataset(tmp_path / "d")["meta"]["colours"] == "random-episode"
    W.write_dataset(tmp_path / "f", "tworoom", n_episodes=3, steps=4, size=16, seed=0)
    assert W.open_dataset(tmp_path / "f")["meta"]["colours"] == "fixed"
    with pytest.raises(GeoprobeError, match="unknown colour mode 'rainbow'"):
        W.write_dataset(tmp_path / "x", colours="rainbow")
    assert not (tmp_path / "x").exists()
