"""Small 2-D physics worlds rendered to RGB pixels, with the true state of every frame.

Three worlds, all numpy, seeded and vectorised across episodes (one array operation moves every
episode at once):

``tworoom``
    An agent (a disc) moved by 2-D actions in the unit square, split by a vertical wall with a
    door, as in LeWorldModel's TwoRoom. State ``x, y``; action ``(dx, dy)`` in [-1, 1]^2 times
    ``max_step``. A move into a wall slides along it (the blocked axis is dropped).
``ball``
    A passive disc bouncing elastically off the borders. State ``x, y, vx, vy``; the action is
    ignored (recorded as zeros so every world has the same dataset layout).
``pendulum``
    A frictionless pendulum hanging from the image centre. State ``angle`` (0 = straight down),
    ``cos_angle``, ``sin_angle``, ``omega``, and the bob position ``x, y``.

Rendering draws discs with anti-aliased edges (coverage = clip(r - d + 1/2, 0, 1) in pixels),
so sub-pixel positions change the image and a position is recoverable to a fraction of a pixel.
Image row ``i`` holds world ``y`` in ``[i/H, (i+1)/H)``.

The object is red unless a dataset asks for varied colours (``colours``, see
:data:`COLOUR_MODES`): one random colour per episode, or a new one every frame.

A dataset is generated once and written as ``.npy`` files (``frames`` uint8 of shape
(episodes, steps, H, W, 3), ``states`` float32 (episodes, steps, n_state), ``actions`` float32
(episodes, steps, 2): the action taken *after* frame t) with ``meta.json``;
:func:`open_dataset` memory-maps it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from geoprobe.embeddings import staged_dir
from geoprobe.errors import FormatError, GeoprobeError

#: agent/object colours (RGB in [0, 1]): the normal one and the one a colour-change event uses
COLOURS = {"red": (0.85, 0.15, 0.1), "blue": (0.1, 0.3, 0.9)}
BACKGROUND = (0.95, 0.95, 0.9)
WALL = (0.3, 0.3, 0.3)
#: how a dataset colours its object: ``fixed`` (always red, the default), ``random-episode``
#: (one random colour per episode, constant within it), ``random-frame`` (a new random colour
#: every frame)
COLOUR_MODES = ("fixed", "random-episode", "random-frame")
#: the range of saturation and value of a random colour: vivid, so the object stands out from
#: the pale background and the grey wall whatever its hue
VIVID = (0.7, 0.95)


def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return c[:, None], c[None, :]  # rows = y, columns = x


def _draw_discs(img: np.ndarray, centres: np.ndarray, radius: float, colours: np.ndarray) -> None:
    """Blend discs into ``img`` in place.

    img : (n, H, W, 3) float32; centres : (n, 2) world (x, y); colours : (n, 3).
    """
    size = img.shape[1]
    ys, xs = _pixel_grid(size)
    d = np.sqrt((xs[None] - centres[:, 0, None, None]) ** 2
                + (ys[None] - centres[:, 1, None, None]) ** 2) * size
    cover = np.clip(radius * size - d + 0.5, 0.0, 1.0)[..., None]
    img *= 1.0 - cover
    img += cover * colours[:, None, None, :]


@dataclass
class World:
    """Shared interface. Subclasses define the state, the dynamics and the drawing."""

    name = "world"
    state_names: tuple[str, ...] = ()
    radius: float = 0.06

    def reset(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Initial states, shape (n, n_state)."""
        raise NotImplementedError

    def step(self, state: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Next states (n, n_state) from states (n, n_state) and actions (n, 2) in [-1, 1]."""
        raise NotImplementedError

    def position(self, state: np.ndarray) -> np.ndarray:
        """Where the drawn object is, (n, 2) world coordinates."""
        return state[:, :2]

    def teleport(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The same states with the object moved somewhere random (a violation of physics)."""
        fresh = self.reset(len(state), rng)
        out = state.copy()
        out[:, :2] = fresh[:, :2]
        return out

    def background(self, size: int) -> np.ndarray:
        return np.broadcast_to(np.asarray(BACKGROUND, np.float32), (size, size, 3))

    def render(self, state: np.ndarray, size: int = 64, colour: np.ndarray | None = None
               ) -> np.ndarray:
        """RGB frames (n, size, size, 3) uint8 of states (n, n_state).

        colour : (n, 3) RGB in [0, 1] of the object, default red.
        """
        n = len(state)
        if colour is None:
            colour = np.broadcast_to(np.asarray(COLOURS["red"], np.float32), (n, 3))
        img = np.repeat(self.background(size)[None], n, axis=0).astype(np.float32)
        self._draw(img, state, np.asarray(colour, np.float32))
        return (img * 255 + 0.5).astype(np.uint8)

    def _draw(self, img, state, colour) -> None:
        _draw_discs(img, self.position(state).astype(np.float32), self.radius, colour)

    def random_actions(self, n: int, steps: int, rng: np.random.Generator) -> np.ndarray:
        """Smooth random exploration actions, (n, steps, 2) in [-1, 1] (an AR(1) process)."""
        a = np.empty((n, steps, 2), np.float32)
        prev = rng.uniform(-1, 1, (n, 2))
        for t in range(steps):
            prev = np.clip(0.7 * prev + 0.6 * rng.standard_normal((n, 2)), -1, 1)
            a[:, t] = prev
        return a

    def config(self) -> dict:
        return {"world": self.name, **asdict(self)}


@dataclass
class TwoRoom(World):
    """Agent among walls: a vertical wall at ``wall_x`` with a door ``door`` (y-interval)."""

    name = "tworoom"
    state_names: tuple[str, ...] = ("x", "y")
    radius: float = 0.06
    max_step: float = 0.07
    wall_x: float = 0.5
    wall_half: float = 0.03
    door: tuple[float, float] = (0.36, 0.64)

    def _valid(self, p: np.ndarray) -> np.ndarray:
        r = self.radius
        inside = np.all((p >= r) & (p <= 1 - r), axis=-1)
        in_band = np.abs(p[:, 0] - self.wall_x) < self.wall_half + r
        in_door = (p[:, 1] >= self.door[0] + r) & (p[:, 1] <= self.door[1] - r)
        return inside & (~in_band | in_door)

    def reset(self, n, rng):
        p = rng.uniform(self.radius, 1 - self.radius, (n, 2))
        bad = ~self._valid(p)
        while bad.any():
            p[bad] = rng.uniform(self.radius, 1 - self.radius, (int(bad.sum()), 2))
            bad = ~self._valid(p)
        return p.astype(np.float32)

    def step(self, state, action):
        move = np.clip(action, -1, 1) * self.max_step
        out = state.copy()
        # Try the full move, then each axis alone (sliding along a wall), else stay.
        for cand in (state + move, state + move * [0, 1], state + move * [1, 0]):
            cand = cand.astype(np.float32)
            take = self._valid(cand) & (out == state).all(axis=1)
            out[take] = cand[take]
        return out

    def background(self, size):
        img = np.array(super().background(size))
        ys, xs = _pixel_grid(size)
        wall = (np.abs(xs - self.wall_x) < self.wall_half) & ~(
            (ys > self.door[0]) & (ys < self.door[1]))
        img[wall] = WALL
        return img


@dataclass
class Ball(World):
    """A disc bouncing elastically in the unit square at constant speed."""

    name = "ball"
    state_names: tuple[str, ...] = ("x", "y", "vx", "vy")
    radius: float = 0.08
    speed: tuple[float, float] = (0.03, 0.07)

    def reset(self, n, rng):
        p = rng.uniform(self.radius, 1 - self.radius, (n, 2))
        ang = rng.uniform(0, 2 * np.pi, n)
        v = rng.uniform(*self.speed, n)[:, None] * np.stack([np.cos(ang), np.sin(ang)], 1)
        return np.concatenate([p, v], axis=1).astype(np.float32)

    def step(self, state, action):
        p, v = state[:, :2] + state[:, 2:], state[:, 2:].copy()
        lo, hi = self.radius, 1 - self.radius
        # Reflect the overshoot back inside and flip the velocity component.
        over_lo, over_hi = p < lo, p > hi
        p = np.where(over_lo, 2 * lo - p, np.where(over_hi, 2 * hi - p, p))
        v = np.where(over_lo | over_hi, -v, v)
        return np.concatenate([p, v], axis=1).astype(np.float32)


@dataclass
class Pendulum(World):
    """A frictionless pendulum of length ``length`` hung at (0.5, ``pivot_y``)."""

    name = "pendulum"
    state_names: tuple[str, ...] = ("x", "y", "angle", "cos_angle", "sin_angle", "omega")
    radius: float = 0.07
    length: float = 0.35
    pivot_y: float = 0.15
    dt: float = 0.1
    g_over_l: float = 6.0
    max_angle: float = 2.2

    def _state(self, angle, omega):
        x = 0.5 + self.length * np.sin(angle)
        y = self.pivot_y + self.length * np.cos(angle)
        return np.stack([x, y, angle, np.cos(angle), np.sin(angle), omega], 1).astype(np.float32)

    def reset(self, n, rng):
        amp = rng.uniform(0.3, self.max_angle, n)
        phase = rng.uniform(0, 2 * np.pi, n)
        # A point on the energy orbit of amplitude `amp` (small-angle phase parametrisation
        # for the angle; omega from energy conservation, so the orbit is exact).
        angle = amp * np.cos(phase)
        omega = -np.sign(np.sin(phase)) * np.sqrt(
            np.maximum(2 * self.g_over_l * (np.cos(angle) - np.cos(amp)), 0))
        return self._state(angle, omega)

    def step(self, state, action):
        # Velocity Verlet (leapfrog) with 8 substeps: symplectic, so energy does not drift.
        angle, omega = state[:, 2].astype(np.float64), state[:, 5].astype(np.float64)
        h = self.dt / 8
        for _ in range(8):
            omega = omega - 0.5 * h * self.g_over_l * np.sin(angle)
            angle = angle + h * omega
            omega = omega - 0.5 * h * self.g_over_l * np.sin(angle)
        angle = (angle + np.pi) % (2 * np.pi) - np.pi
        return self._state(angle, omega)

    def teleport(self, state, rng):
        return self.reset(len(state), rng)

    def _draw(self, img, state, colour):
        size = img.shape[1]
        ys, xs = _pixel_grid(size)
        px, py = 0.5, self.pivot_y
        bx, by = state[:, 0, None, None], state[:, 1, None, None]
        # distance of each pixel to the rod segment pivot -> bob
        dx, dy = bx - px, by - py
        u = np.clip(((xs - px) * dx + (ys - py) * dy) / (dx * dx + dy * dy + 1e-12), 0, 1)
        d = np.sqrt((xs - px - u * dx) ** 2 + (ys - py - u * dy) ** 2) * size
        cover = np.clip(0.6 - d + 0.5, 0, 1)[..., None]
        img *= 1 - cover
        img += cover * np.asarray(WALL, np.float32)
        super()._draw(img, state, colour)


WORLDS = {"tworoom": TwoRoom, "ball": Ball, "pendulum": Pendulum}


def make_world(name: str, **params) -> World:
    """A world by name (``tworoom``, ``ball``, ``pendulum``) with its parameters."""
    try:
        cls = WORLDS[name]
    except KeyError:
        raise GeoprobeError(f"unknown world {name!r}; choose one of {sorted(WORLDS)}") from None
    return cls(**params)


def rollout(world: World, init: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """States (n, steps, n_state) from initial states (n, n_state) and actions (n, steps, 2).

    Frame ``t`` shows the state after actions ``0..t-1``; the last action is not applied.
    """
    n, steps, _ = actions.shape
    states = np.empty((n, steps, init.shape[1]), np.float32)
    s = init
    for t in range(steps):
        states[:, t] = s
        s = world.step(s, actions[:, t])
    return states


def render_episodes(world: World, states: np.ndarray, size: int,
                    colours: np.ndarray | None = None) -> np.ndarray:
    """Frames (n, steps, size, size, 3) uint8 of states (n, steps, n_state).

    colours : (n, steps, 3) per-frame object colour, default red.
    """
    n, steps, k = states.shape
    flat_c = None if colours is None else colours.reshape(n * steps, 3)
    return world.render(states.reshape(n * steps, k), size, flat_c).reshape(
        n, steps, size, size, 3)


def random_colours(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random object colours, shape (*shape, 3) float32 RGB in [0, 1].

    Hue is uniform on the whole colour wheel (the red and blue of :data:`COLOURS` included);
    saturation and value are uniform in :data:`VIVID`.
    """
    # imported here: the command line imports this module for COLOUR_MODES on every start
    from matplotlib.colors import hsv_to_rgb

    hsv = np.stack([rng.uniform(0.0, 1.0, shape), rng.uniform(*VIVID, shape),
                    rng.uniform(*VIVID, shape)], axis=-1)
    return hsv_to_rgb(hsv).astype(np.float32)


def check_colour_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`COLOUR_MODES`, else a clear error."""
    if mode not in COLOUR_MODES:
        raise GeoprobeError(f"unknown colour mode {mode!r}; choose one of {list(COLOUR_MODES)}")
    return mode


def object_colours(mode: str, n: int, steps: int, rng: np.random.Generator
                   ) -> np.ndarray | None:
    """Per-frame object colours (n, steps, 3) for a colour mode of :data:`COLOUR_MODES`;
    None for ``fixed`` (the renderer's red), which draws nothing from ``rng``."""
    if check_colour_mode(mode) == "fixed":
        return None
    if mode == "random-episode":
        return np.repeat(random_colours((n, 1), rng), steps, axis=1)
    return random_colours((n, steps), rng)


def generate(world: str | World = "tworoom", n_episodes: int = 300, steps: int = 32,
             size: int = 64, seed: int = 0, colours: str = "fixed") -> dict[str, np.ndarray]:
    """Random-exploration episodes of a world.

    colours : one of :data:`COLOUR_MODES`. The colours are drawn after the states and
        actions, so the same seed gives the same trajectories in every mode (and ``fixed``
        the same frames as before the option existed).

    Returns a dict with ``frames`` (n_episodes, steps, size, size, 3) uint8, ``states``
    (n_episodes, steps, n_state) float32, ``actions`` (n_episodes, steps, 2) float32 and
    ``state_names``.
    """
    w = make_world(world) if isinstance(world, str) else world
    rng = np.random.default_rng(seed)
    init = w.reset(n_episodes, rng)
    actions = w.random_actions(n_episodes, steps, rng)
    if w.name != "tworoom":
        actions[:] = 0.0  # passive worlds ignore actions; record that honestly
    states = rollout(w, init, actions)
    frames = render_episodes(w, states, size, object_colours(colours, n_episodes, steps, rng))
    return {"frames": frames, "states": states, "actions": actions,
            "state_names": np.array(w.state_names)}


def voe_episodes(world: World, n: int, steps: int, event_t: int, size: int, seed: int
                 ) -> dict[str, np.ndarray]:
    """Violation-of-expectation triplets: the same episode clean, with a teleport at
    ``event_t`` (state jumps, dynamics continue from there), and with a colour change at
    ``event_t`` (state untouched, object drawn blue from then on).

    Returns ``frames`` (3, n, steps, size, size, 3) uint8, ``states`` (3, n, steps, n_state),
    ``actions`` (n, steps, 2) shared by all three, and ``conditions`` = clean, teleport, colour.
    """
    if not 0 < event_t < steps:
        raise GeoprobeError(f"event_t={event_t} must lie inside the episode (1..{steps - 1})")
    rng = np.random.default_rng(seed)
    init = world.reset(n, rng)
    actions = world.random_actions(n, steps, rng)
    if world.name != "tworoom":
        actions[:] = 0.0
    clean = rollout(world, init, actions)
    jumped = world.teleport(clean[:, event_t], rng)
    tele = clean.copy()
    tele[:, event_t:] = rollout(world, jumped, actions[:, event_t:])
    red = np.broadcast_to(np.asarray(COLOURS["red"], np.float32), (n, steps, 3)).copy()
    blue = red.copy()
    blue[:, event_t:] = COLOURS["blue"]
    frames = np.stack([render_episodes(world, clean, size, red),
                       render_episodes(world, tele, size, red),
                       render_episodes(world, clean, size, blue)])
    return {"frames": frames, "states": np.stack([clean, tele, clean]), "actions": actions,
            "conditions": np.array(["clean", "teleport", "colour"])}


# -- on disk ---------------------------------------------------------------------------------

_FILES = ("frames", "states", "actions")


def write_dataset(path, world: str = "tworoom", n_episodes: int = 300, steps: int = 32,
                  size: int = 64, seed: int = 0, chunk: int = 64, colours: str = "fixed") -> Path:
    """Generate a dataset and write it to directory ``path`` (atomically, in chunks of
    episodes so memory stays bounded). Returns the path.

    colours : one of :data:`COLOUR_MODES`, recorded in ``meta.json``.
    """
    path = Path(path)
    w = make_world(world)
    check_colour_mode(colours)
    with staged_dir(path) as tmp:
        k = len(w.state_names)
        shapes = {"frames": ((n_episodes, steps, size, size, 3), np.uint8),
                  "states": ((n_episodes, steps, k), np.float32),
                  "actions": ((n_episodes, steps, 2), np.float32)}
        out = {name: np.lib.format.open_memmap(tmp / f"{name}.npy", mode="w+", dtype=dt,
                                               shape=sh)
               for name, (sh, dt) in shapes.items()}
        # Each chunk of episodes draws from its own child seed: the data are a function of
        # (seed, chunk), both recorded in meta.json.
        seeds = np.random.SeedSequence(seed).spawn((n_episodes + chunk - 1) // chunk)
        for i, ss in enumerate(seeds):
            lo, hi = i * chunk, min((i + 1) * chunk, n_episodes)
            part = generate(w, hi - lo, steps, size, int(ss.generate_state(1)[0]), colours)
            for name in _FILES:
                out[name][lo:hi] = part[name]
        for arr in out.values():
            arr.flush()
        del out
        meta = {"world": w.config(), "n_episodes": n_episodes, "steps": steps, "size": size,
                "seed": seed, "chunk": chunk, "colours": colours,
                "state_names": list(w.state_names)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return path


def open_dataset(path) -> dict:
    """Memory-map a dataset written by :func:`write_dataset`.

    Returns ``frames``, ``states``, ``actions`` (read-only memmaps) and ``meta``.
    """
    path = Path(path)
    if not (path / "meta.json").exists():
        raise FormatError(f"{path}: not a world dataset (no meta.json); create one with "
                          f"`geoprobe jepa generate` or geoprobe.jepa.worlds.write_dataset")
    data = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in _FILES}
    data["meta"] = json.loads((path / "meta.json").read_text())
    return data


def world_from_meta(meta: dict) -> World:
    """Rebuild the :class:`World` recorded in a dataset's ``meta`` (or a checkpoint config)."""
    cfg = dict(meta["world"] if isinstance(meta.get("world"), dict) else meta)
    name = cfg.pop("world")
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}
    return make_world(name, **cfg)
