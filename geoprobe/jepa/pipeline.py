"""generate -> train -> export -> probe -> report, as one function (and one command).

``run_pipeline(workdir)`` answers "what does this latent encode?" for a LeWM-style JEPA
trained on TwoRoom with its embedded defaults, in minutes on two CPU cores::

    from geoprobe.jepa.pipeline import run_pipeline
    report = run_pipeline("work/jepa", lam=0.1)        # -> work/jepa/report/report.md

    geoprobe jepa run work/jepa --lam 0.1               # the same from the shell

``world_model_latents`` is the first half (data, training, export) as a
``geoprobe.generators`` entry (``jepa-world-model``), so a suite can name it with
``generate = "jepa-world-model"`` and run any probe on the latents
(``geoprobe/suites/jepa-tworoom.toml``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from geoprobe.embeddings import EmbeddingSet
from geoprobe.locks import work_dir
from geoprobe.plotting import save_figure
from geoprobe.provenance import write_json_atomic, write_text_atomic
from geoprobe.safepath import check_name, inside
from geoprobe.sigreg import sigreg
from geoprobe.source import AUTO, resolve_source

#: the embedded default: about 3 minutes end to end on 2 cores (benchmarks/results/main_job.md)
DEFAULTS = {"world": "tworoom", "n_episodes": 300, "steps": 32, "size": 64, "train_steps": 600}
#: RankMe below this fraction of the latent dimension is reported as a collapse
COLLAPSE_FRACTION = 0.25


def _dataset(path: Path, world: str, n_episodes: int, steps: int, size: int, seed: int,
             colours: str):
    from .worlds import write_dataset

    if not (path / "meta.json").exists():
        write_dataset(path, world, n_episodes, steps, size, seed, colours=colours)


def colour_tag(colours: str) -> str:
    """The suffix that keeps cache and report folders of a colour mode apart: empty for
    ``fixed`` (so folders made before the option are still found), else ``-<mode>``."""
    from .worlds import check_colour_mode

    return "" if check_colour_mode(colours) == "fixed" else f"-{colours}"


def world_model_latents(world: str = DEFAULTS["world"], n_episodes: int = DEFAULTS["n_episodes"],
                        steps: int = DEFAULTS["steps"], size: int = DEFAULTS["size"],
                        lam: float = 0.1, train_steps: int = DEFAULTS["train_steps"],
                        dim: int = 32, seed: int = 0, workdir=None, model: dict | None = None,
                        colours: str = "fixed", show_progress: bool = True) -> EmbeddingSet:
    """Generate a world dataset, train a JEPA on it (resuming if interrupted) and export its
    latents; returns the exported :class:`EmbeddingSet` (layer ``z``, true-state columns,
    ``episode``, ``t``, ``split``; random-init twin beside it; checkpoint in provenance).

    ``model`` holds further :class:`~geoprobe.jepa.JEPAConfig` keys (``channels``,
    ``hidden``, ``batch``, ...). ``colours`` is the dataset's colour mode
    (``geoprobe.jepa.worlds.COLOUR_MODES``; default ``fixed``, a red object). Everything is cached in ``workdir`` (if None, a
    :func:`~geoprobe.locks.work_dir` of this process, removed by a later geoprobe process once
    this one has exited): a second call with the same arguments reuses the dataset and the
    finished checkpoint.
    """
    from .export import export
    from .model import JEPAConfig
    from .train import CHECKPOINT, read_checkpoint, train

    workdir = Path(workdir) if workdir else work_dir("jepa")
    # The cache folders are named from the arguments (which a suite sets): all are checked
    # to stay inside workdir before anything is written.
    check_name(world, what="jepa-world-model: world")
    tag = colour_tag(colours)
    data, run, out = (inside(workdir, name, what="jepa-world-model: cache folder") for name in (
        f"data-{world}-{n_episodes}x{steps}-{size}px-s{seed}{tag}",
        f"run-lam{lam:g}-d{dim}-s{seed}{tag}", f"latents-lam{lam:g}-d{dim}-s{seed}{tag}"))
    workdir.mkdir(parents=True, exist_ok=True)
    _dataset(data, world, n_episodes, steps, size, seed, colours)
    cfg = JEPAConfig.from_dict({**(model or {}), "lam": lam, "dim": dim, "steps": train_steps,
                                "seed": seed, "data": str(data)})
    ckpt = run / CHECKPOINT
    if not ckpt.exists() or read_checkpoint(ckpt)[1] < train_steps:
        train(cfg, run, show_progress=show_progress)
    if not (out / "manifest.json").exists():
        export(ckpt, out, show_progress=show_progress)
    return EmbeddingSet.open(out)


def gaussianity(emb: EmbeddingSet, split: str = "val", n_directions: int = 1024,
                seed: int = 0) -> float:
    """SIGReg (Epps-Pulley, averaged over random directions) of the held-out latents: the
    distance of their distribution from N(0, I); 0 would be a perfect isotropic Gaussian
    (a finite sample of one gives about 1 at any N)."""
    rows = np.flatnonzero(emb.items["split"] == split) if "split" in emb.items else slice(None)
    z = torch.as_tensor(np.asarray(emb.layer("z"))[rows], dtype=torch.float32)
    return float(sigreg(z, n_directions, torch.Generator().manual_seed(seed)))


#: the fracture test across TwoRoom's wall (docs/fracture.md): is the agent's ``y`` read along
#: one direction in both rooms? Contexts: the rooms (``room`` column of :func:`with_rooms`);
#: other factor ``x``; bootstrap unit the episode
WALL_FRACTURE = {"target": "y", "context": "room", "others": ["x"], "group": "episode",
                 "n_resamples": 10}


def with_rooms(emb: EmbeddingSet) -> EmbeddingSet:
    """``emb`` with a ``room`` column: ``left`` where the agent's ``x < 0.5`` (TwoRoom's
    wall), else ``right``."""
    return emb.with_items({**{k: emb.items[k] for k in emb.items.names},
                           "room": np.where(emb.items["x"] < 0.5, "left", "right")})


def wall_fracture(emb: EmbeddingSet, *, seed: int = 0, split: str = "val"):
    """The :data:`WALL_FRACTURE` test on the ``split`` rows of an export and of its
    random-init twin (no weight sweeps); returns the fracture probe's ProbeResult."""
    from geoprobe.registry import make_probe

    twin = resolve_source(emb, twin=AUTO).twin
    rows = np.flatnonzero(emb.items["split"] == split)
    return make_probe("fracture", **WALL_FRACTURE).run(
        with_rooms(emb).subset(rows), twin=with_rooms(twin).subset(rows), seed=seed,
        progress=False)


def probe_latents(emb: EmbeddingSet, *, seed: int = 0, mlp: bool = True,
                  probe_params: dict | None = None, show_progress: bool = False) -> dict:
    """Run the world-model analyses on an export; returns {probe id: ProbeResult}.

    probe_params : {probe id: {param: value}} overriding the defaults (ids: decodability,
        spectrum, straightness, voe, planning).
    """
    extra = probe_params or {}
    from geoprobe.registry import make_probe

    state = [c for c in emb.provenance.get("world", {}).get("state_names", [])
             if c in emb.items]
    angles = [c for c in state if c == "angle"]
    targets = [c for c in state if c not in angles]
    plan = [("planning", "latent-planning", {})] if emb.provenance.get(
        "world", {}).get("world") == "tworoom" else []
    jobs = [("decodability", "linear-decodability",
             {"targets": targets, "angles": angles, "group": "episode", "mlp": mlp}),
            ("spectrum", "covariance-spectrum", {"group": "episode"}),
            ("straightness", "temporal-straightness", {"reference": state[:2]}),
            ("voe", "voe-surprise", {}), *plan]
    source = resolve_source(emb, twin=AUTO)  # the exported twin, read once for every probe
    return {pid: make_probe(name, **{**params, **extra.get(pid, {})}).run(
                source, seed=seed, progress=show_progress) for pid, name, params in jobs}


def summary_row(emb: EmbeddingSet, results: dict) -> dict:
    """The headline numbers of one model (one row of the report table)."""
    row = {}
    dec = results["decodability"]
    for m in dec.metrics:
        if m.name in ("pearson_r", "mlp_pearson_r") and not m.is_baseline:
            row[f"{m.name}[{m.labels['target']}]"] = m.value
        if m.name == "pearson_r" and m.labels.get("baseline") == "random-init":
            row[f"random_init_r[{m.labels['target']}]"] = m.value
    rankme = results["spectrum"].metric("rankme", layer="z").value
    row.update(rankme=rankme, collapsed=bool(rankme < COLLAPSE_FRACTION * emb.dim),
               gaussianity_sigreg=gaussianity(emb),
               straightness=results["straightness"].metric("straightness", layer="z").value)
    voe = results["voe"]
    for cond in ("teleport", "colour"):
        row[f"voe_ratio[{cond}]"] = voe.metric("surprise_ratio", condition=cond).value
        row[f"voe_p[{cond}]"] = voe.metric("p_value", condition=cond).value
    if "planning" in results:
        row["planning_success"] = results["planning"].metric("success_rate").value
        row["random_success"] = results["planning"].metric(
            "success_rate", baseline="random-actions").value
    return row


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e-3 and v != 0 else f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


def _metric_line(m) -> str:
    ci = "" if not np.isfinite(m.ci_low) else f" [{_fmt(m.ci_low)}, {_fmt(m.ci_high)}]"
    labels = ", ".join(f"{k}={v}" for k, v in m.labels.items())
    return f"| {m.name} | {labels} | {_fmt(m.value)}{ci} | {m.n} {m.unit} |"


def write_report(out: Path, emb: EmbeddingSet, results: dict, timings: dict,
                 formats=("pdf", "png")) -> Path:
    """results.json, one figure per probe (in ``formats``; none if empty) and report.md in
    ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    row = summary_row(emb, results)
    write_json_atomic(out / "results.json", {
        "summary": row, "timings_s": timings, "provenance": {
            k: v for k, v in emb.provenance.items() if not k.startswith("_")},
        "results": {pid: r.to_dict() for pid, r in results.items()}})
    figs = []
    for pid, r in results.items():
        if formats:
            save_figure(r.plot(), out / pid, formats)
            figs.append(pid)
    cfg = emb.provenance.get("config", {})
    lines = [f"# What does this latent encode? (JEPA on {cfg.get('world', {}).get('world')}, "
             f"lambda = {cfg.get('lam')}, colours {cfg.get('colours', 'fixed')})", "",
             f"Model: {emb.provenance.get('checkpoint')} (step {emb.provenance.get('step')}, "
             f"dim {emb.dim}); {emb.n_items} frames.", "",
             "| quantity | value |", "| --- | --- |"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in row.items()]
    lines += ["", "Collapse flag: RankMe below "
              f"{COLLAPSE_FRACTION:g} x dim. Gaussianity: SIGReg of held-out latents "
              "(about 1 for a Gaussian sample, large when far from N(0, I)).", "",
              "## All metrics (95% bootstrap CIs over the named units)", "",
              "| metric | labels | value [CI] | n |", "| --- | --- | --- | --- |"]
    for pid, r in results.items():
        lines += [_metric_line(m) for m in r.metrics]
    lines += ["", "## Figures", ""] + [f"![{f}]({f}.png)" for f in figs]
    lines += ["", "## Timings (s)", ""] + [f"- {k}: {v:.1f}" for k, v in timings.items()]
    write_text_atomic(out / "report.md", "\n".join(lines) + "\n")
    return out / "report.md"


def train_and_probe(workdir, *, lam: float = 0.1, seed: int = 0,
                    world: str = DEFAULTS["world"], train_steps: int = DEFAULTS["train_steps"],
                    colours: str = "fixed", mlp: bool = True, probe_params: dict | None = None,
                    show_progress: bool = True, formats=("pdf", "png"), **params
                    ) -> tuple[EmbeddingSet, dict, dict, Path]:
    """Generate, train, export, probe and report one model (every step reuses what
    ``workdir`` already holds).

    ``params`` go to :func:`world_model_latents` (``n_episodes``, ``steps``, ``size``,
    ``dim``, ``model``). Returns the export, the probe results ({probe id: ProbeResult}),
    the timings in seconds and the path of ``report.md``.
    """
    workdir = Path(workdir)
    t0 = time.perf_counter()
    emb = world_model_latents(world=world, lam=lam, train_steps=train_steps, seed=seed,
                              workdir=workdir, colours=colours, show_progress=show_progress,
                              **params)
    t1 = time.perf_counter()
    results = probe_latents(emb, seed=seed, mlp=mlp, probe_params=probe_params,
                            show_progress=show_progress)
    timings = {"generate+train+export": t1 - t0, "probes": time.perf_counter() - t1}
    report = write_report(workdir / f"report-lam{lam:g}-s{seed}{colour_tag(colours)}", emb,
                          results, timings, formats)
    return emb, results, timings, report


def run_pipeline(workdir, **kwargs) -> Path:
    """Generate, train, export, probe and report; returns the path of ``report.md``.

    ``kwargs`` are those of :func:`train_and_probe` (``lam``, ``seed``, ``world``,
    ``train_steps``, ``colours``, ``mlp``, ...).
    """
    return train_and_probe(workdir, **kwargs)[3]


def load_summary(report_dir) -> dict:
    """The summary row of a written report."""
    return json.loads((Path(report_dir) / "results.json").read_text())["summary"]
