"""``geoprobe jepa generate | train | export | run``: a ``geoprobe.commands`` plug-in."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

from geoprobe.errors import GeoprobeError

from .model import JEPAConfig

#: config fields settable from the command line, with their help
_FLAGS = {"lam": "SIGReg weight lambda (0 = prediction loss only)", "dim": "latent dimension",
          "steps": "training steps", "batch": "windows per batch", "lr": "peak learning rate",
          "seed": "seed of initialisation, batches and SIGReg directions",
          "history": "frames the predictor sees", "n_directions": "SIGReg directions per step",
          "val_episodes": "episodes held out at the end of the dataset"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "jepa", help="train and export a SIGReg JEPA world model from pixels",
        description="Generate a physics world, train a LeWorldModel-style JEPA on its frames, "
                    "export its latents with the true state, or run the whole pipeline.")
    sub = p.add_subparsers(dest="jepa_command", required=True)

    g = sub.add_parser("generate", help="write a world dataset (frames, states, actions)")
    g.add_argument("out", type=Path, help="dataset directory to write")
    g.add_argument("--world", default="tworoom", choices=["tworoom", "ball", "pendulum"])
    g.add_argument("--episodes", type=int, default=300)
    g.add_argument("--steps", type=int, default=32, help="frames per episode")
    g.add_argument("--size", type=int, default=64, help="image side in pixels")
    g.add_argument("--seed", type=int, default=0)
    _colours_flag(g)
    g.set_defaults(func=_generate)

    t = sub.add_parser("train", help="train (or resume training) a JEPA on a dataset")
    t.add_argument("--data", type=Path, help="dataset directory (from `jepa generate`)")
    t.add_argument("--out", type=Path, required=True, help="run directory (checkpoint, log)")
    t.add_argument("--config", type=Path, help="TOML file of config keys (flags override)")
    for name, help_ in _FLAGS.items():
        t.add_argument("--" + name.replace("_", "-"), dest=name, type=_field_type(name),
                       help=help_)
    t.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint "
                   "exists in --out")
    t.add_argument("--checkpoint-every", type=int, default=250)
    t.add_argument("--save-every", type=int, metavar="N",
                   help="also keep the model every N steps in OUT/checkpoints/"
                        "step_NNNNNN.safetensors, for `geoprobe jepa export --all` and "
                        "`geoprobe sweep` (training dynamics)")
    t.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="where to train: cpu (default), cuda, cuda:N, mps, or auto (cuda, else "
                        "mps, else cpu)")
    t.add_argument("--threads", metavar="N",
                   help="BLAS and torch threads: a count or 'auto' (default $GEOPROBE_THREADS, "
                        "else geoprobe's default; see geoprobe.threads)")
    t.set_defaults(func=_train)

    e = sub.add_parser("export", help="write latents + true state as an embedding set")
    e.add_argument("checkpoint", type=Path, help="checkpoint file or run directory")
    e.add_argument("out", type=Path, help="embedding-set directory to write (with --all: a "
                                          "folder for one step_NNNNNN.gpemb per snapshot)")
    e.add_argument("--all", action="store_true",
                   help="export every snapshot of the run directory (train --save-every), "
                        "without twins: step 0 is the untrained model")
    e.add_argument("--data", type=Path, help="dataset (default: the training dataset)")
    e.add_argument("--no-twin", action="store_true",
                   help="skip the random-init twin export")
    e.set_defaults(func=_export)

    r = sub.add_parser("run", help="generate, train, export, probe and report in one go")
    r.add_argument("workdir", type=Path, help="directory for data, run, export and report")
    r.add_argument("--lam", type=float, default=0.1)
    r.add_argument("--steps", type=int, help="training steps (default: the pipeline's)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--world", default="tworoom", choices=["tworoom", "ball", "pendulum"])
    _colours_flag(r)
    r.set_defaults(func=_run)


def _colours_flag(parser) -> None:
    from .worlds import COLOUR_MODES

    parser.add_argument(
        "--colours", default="fixed", choices=COLOUR_MODES,
        help="object colour in the data: fixed (always red, the default), random-episode (one "
             "random vivid colour per episode, constant within it), random-frame (a new "
             "colour every frame). Only random-frame taught the model to ignore a colour "
             "change (docs/jepa.md, Colour invariance)")


def _field_type(name):
    return float if name in ("lam", "lr") else int


def config_from(args) -> JEPAConfig:
    """A :class:`JEPAConfig` from ``--config`` (TOML) overridden by explicit flags."""
    values = {}
    if args.config:
        try:
            values = tomllib.loads(Path(args.config).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise GeoprobeError(f"{args.config}: cannot read config ({exc})") from None
        values = values.get("jepa", values)
    for name in _FLAGS:
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
    if args.data is not None:
        values["data"] = str(args.data)
    if not values.get("data"):
        raise GeoprobeError("no dataset: give --data DIR (make one with `geoprobe jepa "
                            "generate DIR`) or `data = \"DIR\"` in --config")
    return JEPAConfig.from_dict(values)


def _generate(args) -> int:
    from .worlds import write_dataset

    path = write_dataset(args.out, args.world, args.episodes, args.steps, args.size, args.seed,
                         colours=args.colours)
    print(f"wrote {path}")
    return 0


def _train(args) -> int:
    from .train import train

    cfg = config_from(args)
    path = train(cfg, args.out, resume=not args.no_resume,
                 checkpoint_every=args.checkpoint_every, threads=args.threads,
                 device=args.device, save_every=args.save_every)
    print(f"wrote {path}")
    return 0


def _export(args) -> int:
    from .export import export
    from .train import SNAPSHOTS

    if not args.all:
        emb = export(args.checkpoint, args.out, data=args.data, twin=not args.no_twin)
        print(f"wrote {args.out} ({emb.n_items} frames x {emb.dim} dims)")
        return 0
    snapshots = sorted((args.checkpoint / SNAPSHOTS).glob("step_*.safetensors"))
    if not snapshots:
        raise GeoprobeError(f"{args.checkpoint / SNAPSHOTS}: no snapshots; train with "
                            "--save-every N")
    for snap in snapshots:
        # no twins: the untrained model is the snapshot of step 0
        export(snap, args.out / f"{snap.stem}.gpemb", data=args.data, twin=False)
    print(f"wrote {len(snapshots)} embedding sets {args.out}/step_*.gpemb")
    return 0


def _run(args) -> int:
    from .pipeline import run_pipeline

    kwargs = {} if args.steps is None else {"train_steps": args.steps}
    report = run_pipeline(args.workdir, lam=args.lam, seed=args.seed, world=args.world,
                          colours=args.colours, **kwargs)
    print(f"wrote {report}")
    return 0


def main(argv=None) -> int:
    """Stand-alone entry (``python -m geoprobe.jepa``), the same as ``geoprobe jepa``."""
    parser = argparse.ArgumentParser(prog="geoprobe")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GeoprobeError as exc:
        print(f"geoprobe: error: {exc}")
        return 2
