"""Export a trained world model's latents, with the true state of every frame, as an
:class:`~geoprobe.EmbeddingSet`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from geoprobe.embeddings import EmbeddingSet, EmbeddingWriter
from geoprobe.progress import progress
from geoprobe.provenance import file_sha256
from geoprobe.stats import preserves_torch_rng

from .model import JEPA, WorldModel
from .train import CHECKPOINT, load_model
from .worlds import open_dataset

LAYER = "z"
TWIN_SUFFIX = "-random-init"


@preserves_torch_rng
def export(checkpoint, out, *, data=None, twin: bool = True, batch_episodes: int = 16,
           show_progress: bool = True) -> EmbeddingSet:
    """Encode every frame of the dataset and write an embedding set to ``out``.

    checkpoint : checkpoint file or run directory.
    data : dataset directory (default: the one the model was trained on).
    twin : also write the same export from the untrained model (same seed) beside ``out`` as
        ``<out>-random-init``, and name it as the set's random-init twin.

    Layer ``z`` (n_frames, D). Item columns: ``item_id`` (``e<episode>_t<t>``), ``episode``,
    ``t``, ``split`` (``train`` or ``val``: the last ``val_episodes`` episodes were never
    trained on), one float column per true state variable, and ``action_x``, ``action_y``
    (the action taken after the frame) for worlds with actions.
    """
    ckpt = Path(checkpoint)
    ckpt = ckpt / CHECKPOINT if ckpt.is_dir() else ckpt
    net, step = load_model(ckpt)
    cfg = net.cfg
    ds = open_dataset(data or cfg.data)
    out = Path(out)
    provenance = {"model": "geoprobe-jepa", "checkpoint": str(ckpt.resolve()),
                  "checkpoint_sha256": file_sha256(ckpt), "step": step, "config": cfg.to_dict(),
                  "data": str(Path(data or cfg.data).resolve()), "pooling": "none",
                  "world": ds["meta"]["world"]}
    if twin:
        torch.manual_seed(cfg.seed)
        _write(WorldModel(JEPA(cfg)), ds, out.with_name(out.name + TWIN_SUFFIX),
               {**provenance, "model": "geoprobe-jepa (random init)", "step": 0},
               batch_episodes, show_progress)
        provenance["twin"] = out.name + TWIN_SUFFIX
    _write(WorldModel(net), ds, out, provenance, batch_episodes, show_progress)
    return EmbeddingSet.open(out)


def _write(model: WorldModel, ds: dict, out: Path, provenance: dict, batch_episodes: int,
           show_progress: bool) -> None:
    frames, states, actions = ds["frames"], ds["states"], ds["actions"]
    n_eps, n_steps = frames.shape[:2]
    names = ds["meta"]["state_names"]
    n_val = model.cfg.val_episodes
    has_actions = bool(np.any(np.asarray(actions[: min(n_eps, 8)]) != 0))
    with EmbeddingWriter(out, dim=model.cfg.dim, layer_names=[LAYER],
                         provenance=provenance) as writer:
        for lo in progress(range(0, n_eps, batch_episodes), desc=f"export {out.name}",
                           unit="batch", enable=show_progress):
            hi = min(lo + batch_episodes, n_eps)
            f = np.asarray(frames[lo:hi])
            z = model.encode(f.reshape(-1, *f.shape[2:]))
            ep = np.repeat(np.arange(lo, hi), n_steps)
            t = np.tile(np.arange(n_steps), hi - lo)
            cols = {"item_id": np.char.add(np.char.add("e", ep.astype(str)),
                                           np.char.add("_t", t.astype(str))),
                    "episode": ep, "t": t,
                    "split": np.where(ep >= n_eps - n_val, "val", "train")}
            s = np.asarray(states[lo:hi]).reshape(-1, len(names))
            cols.update({name: s[:, j].astype(np.float64) for j, name in enumerate(names)})
            if has_actions:
                a = np.asarray(actions[lo:hi]).reshape(-1, actions.shape[-1])
                cols.update(action_x=a[:, 0].astype(np.float64),
                            action_y=a[:, 1].astype(np.float64))
            writer.append(z[None], cols)
