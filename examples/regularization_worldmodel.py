"""The regularization probes on the JEPA world model (needs the ``jepa`` branch merged).

    python examples/regularization_worldmodel.py RUN_DIR [--out docs/figures]

RUN_DIR is a trained run (``geoprobe jepa train`` / ``geoprobe jepa run``), e.g.
``work/jepa/run-lam0.1-d32-s0``. Two experiments:

1. Learned sparsity (``activation-sparsity``): latents of the training world (TwoRoom, red
   agent) against perturbed worlds rendering the *same* states and actions differently: a
   blue agent, a larger agent (radius 0.09 instead of 0.06), and Gaussian pixel noise
   (sigma 0.1). Episodes pair the conditions, so the bootstrap is over episodes. The
   random-init twin is the untrained model with the same seed.
2. Latent fixed points of the predictor rolled out under a fixed action
   (``predictor_fixed_points``), started from the encoded training-world frames; each fixed
   point is described by the true state of the nearest encoded frame.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import geoprobe
from geoprobe import threads
from geoprobe.jepa.worlds import COLOURS, make_world, render_episodes, rollout
from geoprobe.jepa.model import JEPA, WorldModel
from geoprobe.jepa.train import load_model
from geoprobe.plotting import save_figure
from geoprobe.probes.attractors import predictor_fixed_points
from geoprobe.provenance import write_json_atomic

ACTIONS = {"none": (0.0, 0.0), "right": (1.0, 0.0), "up": (0.0, 1.0), "left": (-1.0, 0.0)}


def shifted_latents(wm: WorldModel, n_episodes: int, steps: int, seed: int):
    """Latents (rows = frames) of one set of episodes rendered four ways, as an EmbeddingSet."""
    rng = np.random.default_rng(seed)
    world = wm.world
    states = rollout(world, world.reset(n_episodes, rng),
                     world.random_actions(n_episodes, steps, rng))
    size = wm.image_size
    blue = np.broadcast_to(np.asarray(COLOURS["blue"], np.float32), (n_episodes, steps, 3))
    big = make_world(world.name, radius=0.09)
    clean = render_episodes(world, states, size)
    noisy = np.clip(clean + rng.normal(0, 0.1 * 255, clean.shape), 0, 255).astype(np.uint8)
    renders = {"in-distribution": clean, "blue-agent": render_episodes(world, states, size,
                                                                        blue),
               "larger-agent": render_episodes(big, states, size), "pixel-noise": noisy}
    layers, cond, episode, t = [], [], [], []
    for name, frames in renders.items():
        layers.append(wm.encode(frames.reshape(-1, size, size, 3)))
        cond += [name] * (n_episodes * steps)
        episode.append(np.repeat(np.arange(n_episodes), steps))
        t.append(np.tile(np.arange(steps), n_episodes))
    z = np.concatenate(layers)
    items = {"item_id": [f"{c}:e{e}_t{s}" for c, e, s in zip(cond, np.concatenate(episode),
                                                            np.concatenate(t))],
             "condition": np.array(cond), "episode": np.concatenate(episode),
             "t": np.concatenate(t), "x": np.tile(states[..., 0].ravel(), 4),
             "y": np.tile(states[..., 1].ravel(), 4)}
    return geoprobe.EmbeddingSet(z[None], items, layer_names=["z"],
                                 source="jepa latents under world shifts")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/figures"))
    ap.add_argument("--episodes", type=int, default=64)
    ap.add_argument("--steps", type=int, default=16)
    args = ap.parse_args()
    with threads.policy():
        _main(args)


def _main(args) -> None:
    net, step = load_model(args.run)
    wm = WorldModel(net)
    torch.manual_seed(net.cfg.seed)
    twin_wm = WorldModel(JEPA(net.cfg), world=wm.world)

    emb = shifted_latents(wm, args.episodes, args.steps, seed=1)
    twin = shifted_latents(twin_wm, args.episodes, args.steps, seed=1)
    result = geoprobe.make_probe("activation-sparsity", group="episode").run(
        emb, twin=twin, seed=0)
    write_json_atomic(args.out / "sparsity_worldmodel.json", result.to_dict())
    save_figure(result.plot(), args.out / "sparsity_worldmodel", formats=("png",))
    for m in result.metrics:
        if m.name.endswith("_shift") and m.name[:-6] in ("top5_energy", "hoyer",
                                                         "effective_rank"):
            print(json.dumps({"metric": m.key(), "value": round(m.value, 4),
                              "ci": [round(m.ci_low, 4), round(m.ci_high, 4)]}))

    clean = emb.subset(np.flatnonzero(emb.column("condition") == "in-distribution"))
    Z = clean.layer("z", dtype=np.float64)
    xy = np.stack([clean.column("x"), clean.column("y")], 1)
    summary = {"run": str(args.run), "step": step}
    for name, action in ACTIONS.items():
        out = predictor_fixed_points(wm, np.array(action, np.float32), Z.astype(np.float32),
                                     max_steps=500)
        near = np.argmin(((out["fixed_points"][:, None] - Z[None]) ** 2).sum(-1), axis=1) \
            if len(out["fixed_points"]) else np.zeros(0, int)
        summary[name] = {"n_fixed_points": int(len(out["fixed_points"])),
                         "converged_share": float(out["converged"].mean()),
                         "basin": out["basin"].tolist(),
                         "spectral_radius": np.round(out["spectral_radius"], 3).tolist(),
                         "nearest_frame_xy": np.round(xy[near], 3).tolist(),
                         "median_steps": float(np.median(out["steps"]))}
        print(name, json.dumps(summary[name]))
    write_json_atomic(args.out / "attractors_worldmodel.json", summary)


if __name__ == "__main__":
    main()
