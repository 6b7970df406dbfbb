"""World-model probes: temporal straightness, violation-of-expectation surprise, latent planning.

Definitions (LeWorldModel, Maes et al. 2026, arXiv 2603.19312, section on latent
analysis; the authors never released these scripts, le-wm issue #28, so the protocol details
below are ours and stated where they matter):

Temporal straightness (``temporal-straightness``, works on any export with ``episode``, ``t``)
    ``v_t = z_{t+1} - z_t`` inside an episode; ``S = mean cos(v_t, v_{t+1})`` over consecutive
    velocity pairs. We average per episode first and report the mean over episodes with a
    cluster bootstrap over episodes. Pairs where either velocity is below ``min_speed`` times
    the median speed are skipped (an agent pushing into a wall does not move, and the cosine
    of two near-zero vectors is noise). Baselines: ``shuffled-time`` (frames permuted inside
    each episode) and ``true-state`` (the same statistic on the true state columns given in
    ``reference``: how straight the physical trajectory itself is).

Violation of expectation (``voe-surprise``, needs a world model)
    ``surprise_t = ||pred(z_{t-h..t-1}, a_{t-h..t-1}) - z_t||^2``. Episodes come in
    triplets that share the start and the actions: clean, a teleport of the object at
    ``event_t``, and a colour change of the object at ``event_t``. The statistic is the
    surprise averaged over the ``window`` frames from ``event_t`` on; each perturbed episode
    is compared with its own clean twin (paired t-test, two-sided, and a bootstrap CI of the
    mean paired difference over episodes).

Planning (``latent-planning``, needs a world model whose world takes actions)
    Held-out start-goal pairs: the goal is the state reached after ``goal_steps`` random
    exploration actions from the start, so it is reachable. Model-predictive control: every
    step, the cross-entropy method (CEM; ``n_samples`` action sequences of ``horizon`` steps,
    ``n_elites`` kept, ``n_iters`` refits) minimises ``||rollout_final - z_goal||^2`` in latent
    space (LeWM's cost) and the first action is executed in the real world. Success: the true
    position comes within ``tolerance`` of the goal within ``budget`` steps. Baseline: random
    exploration actions from the same starts for the same budget.

The model comes from ``ctx.model`` (any object with the ``geoprobe.jepa.WorldModel``
interface) or, when none is given, from the checkpoint named in the embedding set's
provenance (``geoprobe jepa export`` records it), so the probes run from a suite.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from scipy import stats as sps

from geoprobe.contract import Interval, NON_NEGATIVE, OPEN_UNIT, POSITIVE, POSITIVE_INT, SequenceOf
from geoprobe.embeddings import EmbeddingSet
from geoprobe.errors import ProbeInputError
from geoprobe.plotting import BASELINE_COLOR, PALETTE, new_figure
from geoprobe.probe import CheckpointModelProbe, Example, Metric, Probe, ProbeResult, Requirements
from geoprobe.stats import bootstrap_mean, child_seed


def _episode_order(episode: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.lexsort((t, episode))


def straightness_cosines(X: np.ndarray, episode: np.ndarray, t: np.ndarray,
                         min_speed: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Cosines between successive velocities and the episode of each.

    X : (n, d) rows of any order; episode, t : (n,). Returns (cos (m,), episode (m,)) for the
    m consecutive velocity pairs whose speeds both exceed ``min_speed`` x the median speed.
    """
    order = _episode_order(episode, t)
    X, ep, tt = np.asarray(X, np.float64)[order], episode[order], t[order]
    step_ok = (ep[1:] == ep[:-1]) & (tt[1:] - tt[:-1] == 1)
    v = X[1:] - X[:-1]
    speed = np.linalg.norm(v, axis=1)
    moving = step_ok & (speed > min_speed * np.median(speed[step_ok]))
    pair_ok = moving[1:] & moving[:-1] & (ep[2:] == ep[:-2])
    cos = np.einsum("ij,ij->i", v[1:], v[:-1]) / np.maximum(speed[1:] * speed[:-1], 1e-300)
    return cos[pair_ok], ep[1:-1][pair_ok]


def _episode_means(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, codes = np.unique(groups, return_inverse=True)
    return np.bincount(codes, weights=values) / np.bincount(codes), uniq


class TemporalStraightness(Probe):
    """Mean cosine between successive latent velocities, per layer, with baselines.

    Parameters
    ----------
    episode, time : str
        Item columns naming the episode and the frame index.
    reference : list of str
        True-state columns whose trajectory straightness is reported as a reference
        (``baseline=true-state``); empty for none.
    min_speed : float
        Skip velocity pairs slower than this fraction of the median speed.
    n_boot : int; level : float
    """

    name = "temporal-straightness"
    summary = "Mean cosine between successive latent velocities (LeWM), vs shuffled time."
    memory = "in memory: one layer in float64 (8 n d bytes) and its velocities (the same again)"
    requires = Requirements(min_items=3)
    parameter_constraints = {
        "episode": [str], "time": [str], "reference": [SequenceOf(str)],
        "min_speed": [NON_NEGATIVE], "n_boot": [POSITIVE_INT], "level": [OPEN_UNIT],
    }
    column_parameters = ("episode", "time", "reference")
    metric_directions = {"straightness": True}

    @classmethod
    def example_input(cls, rng) -> Example:
        # 12 episodes of 8 frames: straight lines in layer 0, random walks in layer 1
        v = rng.standard_normal((12, 1, 4))
        straight = np.arange(8)[None, :, None] * v + 0.01 * rng.standard_normal((12, 8, 4))
        walk = np.cumsum(rng.standard_normal((12, 8, 4)), axis=1)
        layers = np.stack([straight.reshape(96, 4), walk.reshape(96, 4)]).astype(np.float32)
        items = {"episode": np.repeat(np.arange(12), 8), "t": np.tile(np.arange(8), 12),
                 "sx": straight.reshape(96, 4)[:, 0]}
        return Example(EmbeddingSet(layers, items, source="example"),
                       {"reference": ["sx"], "n_boot": 50})

    def __init__(self, episode="episode", time="t", reference=(), min_speed=0.05, n_boot=1000,
                 level=0.95):
        self.episode = episode
        self.time = time
        self.reference = reference
        self.min_speed = min_speed
        self.n_boot = n_boot
        self.level = level

    def _metric(self, X, ep, t, rng, **labels):
        cos, groups = straightness_cosines(X, ep, t, self.min_speed)
        if cos.size == 0:
            raise ProbeInputError(f"probe {self.name!r}: no episode has three consecutive "
                                  f"moving frames")
        per_ep, _ = _episode_means(cos, groups)
        ci = bootstrap_mean(per_ep, n_boot=self.n_boot, level=self.level, rng=rng,
                            unit="episodes")
        return Metric.from_interval("straightness", ci, higher_is_better=True, **labels), cos

    def evaluate(self, ctx) -> ProbeResult:
        ep, t = ctx.column(self.episode), ctx.column(self.time).astype(np.int64)
        metrics, hists, bins = [], [], np.linspace(-1, 1, 41)
        ref_hist = None
        if self.reference:
            S = np.stack([ctx.column(c).astype(np.float64) for c in self.reference], 1)
            m, cos = self._metric(S, ep, t, ctx.rng, layer="state", baseline="true-state")
            ref_hist = np.histogram(cos, bins)[0] / max(cos.size, 1)
            ref_metric = m
        shuffled_hists = []
        for layer, X in ctx.iter_layers():
            m, cos = self._metric(X, ep, t, ctx.rng, layer=layer)
            metrics.append(m)
            hists.append(np.histogram(cos, bins)[0] / cos.size)
            # shuffled time: a random permutation of t inside each episode
            t_shuf = np.empty_like(t)
            order = np.lexsort((ctx.rng.random(len(t)), ep))
            t_shuf[order] = t[np.lexsort((t, ep))]
            m, cos = self._metric(X, ep, t_shuf, ctx.rng, layer=layer, baseline="shuffled-time")
            metrics.append(m)
            shuffled_hists.append(np.histogram(cos, bins)[0] / cos.size)
            if ref_hist is not None:
                metrics.append(replace(ref_metric, labels={"layer": layer,
                                                           "baseline": "true-state"}))
        arrays = {"bins": bins, "hist": np.array(hists), "hist_shuffled": np.array(shuffled_hists)}
        if ref_hist is not None:
            arrays["hist_state"] = ref_hist
        return self.result(ctx, metrics, arrays, min_speed=self.min_speed)

    @classmethod
    def plot(cls, result: ProbeResult):
        layers = result.info["layers"]
        fig, axes = new_figure(2, width="double", aspect=0.7)
        ax_h, ax_m = axes[0]
        bins = result.arrays["bins"]
        mid = 0.5 * (bins[1:] + bins[:-1])
        ax_h.plot(mid, result.arrays["hist"][-1], color=PALETTE[0], label=f"latent ({layers[-1]})")
        ax_h.plot(mid, result.arrays["hist_shuffled"][-1], color=BASELINE_COLOR, ls="--",
                  label="shuffled time")
        if "hist_state" in result.arrays:
            ax_h.plot(mid, result.arrays["hist_state"], color=PALETTE[2], ls=":",
                      label="true state")
        ax_h.set_xlabel(r"$\cos(v_t, v_{t+1})$")
        ax_h.set_ylabel("share of pairs")
        ax_h.set_title("successive-velocity cosines")
        ax_h.legend(frameon=False)
        x = np.arange(len(layers))
        for off, (baseline, color, label) in enumerate(
                ((None, PALETTE[0], "latent"), ("shuffled-time", BASELINE_COLOR, "shuffled time"),
                 ("true-state", PALETTE[2], "true state"),
                 ("random-init", PALETTE[3], "random init"))):
            ms = result.series("straightness", at=layers,
                               **({"baseline": baseline} if baseline else {}))
            if not ms.found.any():
                continue
            err = np.abs(np.array([ms.ci_low, ms.ci_high]) - ms.values)
            ax_m.errorbar(x + 0.1 * off, ms.values, yerr=np.nan_to_num(err), fmt="o",
                          color=color, capsize=2, label=label)
        ax_m.axhline(0, color="k", lw=0.5)
        ax_m.set_xlim(-0.5, len(layers) - 0.2)
        ax_m.set_xticks(x + 0.15, layers)
        ax_m.set_xlabel("layer")
        ax_m.set_ylabel("straightness S (95% CI)")
        ax_m.set_title("temporal straightness")
        ax_m.legend(frameon=False)
        return fig


# -- model-based probes ----------------------------------------------------------------------

class _ModelProbe(CheckpointModelProbe):
    """Shared: the world model (ctx.model or the export's checkpoint)."""

    memory = ("in memory: the live model and the observations it encodes (no embedding layer is read)")
    model_kind = "a world model"
    exported_by = "an export (`geoprobe jepa export` records it)"

    @staticmethod
    def load_checkpoint(path):
        from geoprobe.jepa.train import load_world_model

        return load_world_model(path)

    @staticmethod
    def _example(params) -> Example:
        """The model probes read no vectors: a token two-layer set and the oracle model."""
        emb = EmbeddingSet(np.zeros((2, 4, 2), np.float32),
                           {"episode": np.zeros(4, int), "t": np.arange(4)}, source="example")
        return Example(emb, params, model=OracleWorldModel())


def surprise_curves(model, frames: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """||predicted - actual||^2 for every frame that has a full history.

    frames : (c, n, steps, H, W, 3) uint8; actions : (n, steps, A).
    Returns (c, n, steps - history).
    """
    c, n, steps = frames.shape[:3]
    h = model.history
    Z = model.encode(frames.reshape(-1, *frames.shape[3:])).reshape(c, n, steps, -1)
    zw = np.lib.stride_tricks.sliding_window_view(Z[:, :, :-1], h, axis=2)  # c,n,s-h,D,h
    aw = np.lib.stride_tricks.sliding_window_view(actions[:, :-1], h, axis=1)  # n,s-h,A,h
    zw = np.moveaxis(zw, -1, -2).reshape(-1, h, Z.shape[-1])
    aw = np.broadcast_to(np.moveaxis(aw, -1, -2)[None], (c, *aw.shape[:2], h, aw.shape[2]))
    pred = model.predict(zw, aw.reshape(-1, h, actions.shape[-1]))
    return ((pred.reshape(c, n, steps - h, -1) - Z[:, :, h:]) ** 2).sum(-1)


class VoESurprise(_ModelProbe):
    """Violation-of-expectation surprise: teleport and colour-change episodes vs clean ones.

    Parameters
    ----------
    n_episodes : int — triplets (clean, teleport, colour change).
    steps : int — frames per episode. event_t : int — frame of the event.
    window : int — frames from ``event_t`` on over which surprise is averaged.
    alpha : float — significance level of the paired test (reported as ``significant``).
    n_boot : int; level : float
    """

    name = "voe-surprise"
    summary = ("Prediction error when physics is violated (teleport) vs a colour change "
               "(needs a world model, or an export naming its checkpoint).")

    parameter_constraints = {
        "n_episodes": [Interval(int, 2, None)], "steps": [Interval(int, 2, None)],
        "event_t": [POSITIVE_INT], "window": [POSITIVE_INT], "alpha": [OPEN_UNIT],
        "n_boot": [POSITIVE_INT], "level": [OPEN_UNIT],
    }
    # surprise describes the model; which condition should surprise it is the reader's call
    metric_directions = {"surprise": None, "surprise_increase": None, "p_value": None,
                         "surprise_ratio": None}

    @classmethod
    def example_input(cls, rng) -> Example:
        return cls._example({"n_episodes": 6, "steps": 6, "event_t": 3, "n_boot": 50})

    def __init__(self, n_episodes=64, steps=16, event_t=8, window=1, alpha=0.01, n_boot=1000,
                 level=0.95):
        self.n_episodes = n_episodes
        self.steps = steps
        self.event_t = event_t
        self.window = window
        self.alpha = alpha
        self.n_boot = n_boot
        self.level = level

    def evaluate(self, ctx) -> ProbeResult:
        from geoprobe.jepa.worlds import voe_episodes

        model = self.live_model(ctx)
        h = model.history
        if not h <= self.event_t <= self.steps - self.window:
            raise ProbeInputError(f"probe {self.name!r}: event_t={self.event_t} must leave "
                                  f"{h} frames of history before it and window={self.window} "
                                  f"frames after it in steps={self.steps}")
        v = voe_episodes(model.world, self.n_episodes, self.steps, self.event_t,
                         model.image_size, seed=child_seed(ctx.rng))
        curves = surprise_curves(model, v["frames"], v["actions"])  # (3, n, steps - h)
        k = self.event_t - h
        at_event = curves[:, :, k:k + self.window].mean(-1)  # (3, n)
        conds = [str(c) for c in v["conditions"]]
        metrics, info = [], {}
        for i, cond in enumerate(conds):
            ci = bootstrap_mean(at_event[i], n_boot=self.n_boot, level=self.level, rng=ctx.rng,
                                unit="episodes")
            metrics.append(Metric.from_interval("surprise", ci, condition=cond))
        for i, cond in enumerate(conds[1:], start=1):
            diff = at_event[i] - at_event[0]
            ci = bootstrap_mean(diff, n_boot=self.n_boot, level=self.level, rng=ctx.rng,
                                unit="episodes")
            metrics.append(Metric.from_interval("surprise_increase", ci, condition=cond))
            p = float(sps.ttest_rel(at_event[i], at_event[0]).pvalue)
            metrics.append(Metric("p_value", p, n=self.n_episodes, unit="episodes",
                                  labels={"condition": cond}, higher_is_better=None))
            ratio = float(at_event[i].mean() / max(at_event[0].mean(), 1e-300))
            metrics.append(Metric("surprise_ratio", ratio, n=self.n_episodes, unit="episodes",
                                  labels={"condition": cond}))
            info[f"significant_{cond}"] = bool(p < self.alpha and diff.mean() > 0)
        mean = curves.mean(1)
        sem = curves.std(1, ddof=1) / np.sqrt(curves.shape[1])
        t_axis = np.arange(h, self.steps)
        return self.result(ctx, metrics, {"t": t_axis, "mean": mean, "sem": sem},
                           conditions=conds, event_t=self.event_t, **info)

    @classmethod
    def plot(cls, result: ProbeResult):
        fig, axes = new_figure(2, width="double", aspect=0.7)
        ax_c, ax_b = axes[0]
        t = result.arrays["t"]
        conds = result.info["conditions"]
        colors = {"clean": BASELINE_COLOR, "teleport": PALETTE[3], "colour": PALETTE[0]}
        for i, cond in enumerate(conds):
            m, s = result.arrays["mean"][i], result.arrays["sem"][i]
            ax_c.plot(t, m, marker=".", color=colors.get(cond), label=cond)
            ax_c.fill_between(t, m - 2 * s, m + 2 * s, color=colors.get(cond), alpha=0.2, lw=0)
        ax_c.axvline(result.info["event_t"], color="k", lw=0.6, ls=":")
        ax_c.set_xlabel("frame t (event at dotted line)")
        ax_c.set_ylabel(r"surprise $\Vert\mathrm{pred} - z\Vert^2$ (mean ± 2 s.e.)")
        ax_c.set_title("surprise over time")
        ax_c.legend(frameon=False)
        ms = [result.metric("surprise", condition=c) for c in conds]
        x = np.arange(len(conds))
        v = np.array([m.value for m in ms])
        err = np.abs(np.array([[m.ci_low, m.ci_high] for m in ms]).T - v)
        ax_b.bar(x, v, color=[colors.get(c) for c in conds], yerr=err, capsize=3)
        labels = []
        for c in conds:
            if c == "clean":
                labels.append(c)
            else:
                p = result.metric("p_value", condition=c).value
                labels.append(f"{c}\np={p:.1g}")
        ax_b.set_xticks(x, labels)
        ax_b.set_ylabel("surprise at the event (95% CI)")
        ax_b.set_title("paired comparison with clean")
        return fig


class LatentPlanning(_ModelProbe):
    """Goal-reaching by CEM in latent space vs random actions, on held-out start-goal pairs.

    Parameters
    ----------
    n_pairs : int — start-goal pairs. goal_steps : int — random steps from start to goal.
    budget : int — real environment steps allowed.
    horizon, n_samples, n_elites, n_iters : int — CEM (LeWM: 5, 300, 30, -).
    tolerance : float — success radius in world units (the agent's radius is 0.06).
    n_boot : int; level : float
    """

    name = "latent-planning"
    summary = ("CEM planning in latent space to a goal image: success rate vs random actions "
               "(needs a world model, or an export naming its checkpoint).")

    parameter_constraints = {
        "n_pairs": [POSITIVE_INT], "goal_steps": [POSITIVE_INT], "budget": [POSITIVE_INT],
        "horizon": [POSITIVE_INT],
        "n_samples": [POSITIVE_INT], "n_elites": [POSITIVE_INT], "n_iters": [POSITIVE_INT],
        "tolerance": [POSITIVE],
        "n_boot": [POSITIVE_INT], "level": [OPEN_UNIT],
    }
    metric_directions = {"success_rate": True, "final_distance": False, "success_gain": True}

    @classmethod
    def example_input(cls, rng) -> Example:
        return cls._example({"n_pairs": 4, "goal_steps": 3, "budget": 4, "n_samples": 16,
                             "n_elites": 4, "n_iters": 2, "n_boot": 50})

    def __init__(self, n_pairs=40, goal_steps=8, budget=16, horizon=5, n_samples=100,
                 n_elites=10, n_iters=3, tolerance=0.06, n_boot=1000, level=0.95):
        self.n_pairs = n_pairs
        self.goal_steps = goal_steps
        self.budget = budget
        self.horizon = horizon
        self.n_samples = n_samples
        self.n_elites = n_elites
        self.n_iters = n_iters
        self.tolerance = tolerance
        self.n_boot = n_boot
        self.level = level

    def evaluate(self, ctx) -> ProbeResult:
        model = self.live_model(ctx)
        world = model.world
        if world.name != "tworoom":
            raise ProbeInputError(f"probe {self.name!r} needs a world driven by actions; "
                                  f"{world.name!r} ignores them")
        rng = np.random.default_rng(child_seed(ctx.rng))
        start = world.reset(self.n_pairs, rng)
        s = start
        for a in np.moveaxis(world.random_actions(self.n_pairs, self.goal_steps, rng), 1, 0):
            s = world.step(s, a)
        goal = s
        gen = torch.Generator().manual_seed(child_seed(ctx.rng))
        plan_dist = self._plan(model, start, goal, gen)
        rand_dist = self._random(world, start, goal, rng)
        init_dist = np.linalg.norm(start[:, :2] - goal[:, :2], axis=1)
        metrics = []
        for name, dist, labels in (("planner", plan_dist, {}),
                                   ("random", rand_dist, {"baseline": "random-actions"})):
            success = (dist.min(1) <= self.tolerance).astype(float)
            ci = bootstrap_mean(success, n_boot=self.n_boot, level=self.level, rng=ctx.rng,
                                unit="pairs")
            metrics.append(Metric.from_interval("success_rate", ci, higher_is_better=True,
                                                **labels))
            ci = bootstrap_mean(dist[:, -1], n_boot=self.n_boot, level=self.level, rng=ctx.rng,
                                unit="pairs")
            metrics.append(Metric.from_interval("final_distance", ci, higher_is_better=False,
                                                **labels))
        gain = ((plan_dist.min(1) <= self.tolerance).astype(float)
                - (rand_dist.min(1) <= self.tolerance))
        metrics.append(Metric.from_interval(
            "success_gain", bootstrap_mean(gain, n_boot=self.n_boot, level=self.level,
                                           rng=ctx.rng, unit="pairs"), higher_is_better=True))
        arrays = {"plan_distance": plan_dist.mean(0), "random_distance": rand_dist.mean(0),
                  "initial_distance": init_dist}
        return self.result(ctx, metrics, arrays, tolerance=self.tolerance,
                           mean_initial_distance=float(init_dist.mean()))

    def _plan(self, model, start, goal, gen) -> np.ndarray:
        """MPC with CEM; returns true distance to the goal after each step, (n, budget)."""
        world, h, size = model.world, model.history, model.image_size
        n, S, H = len(start), self.n_samples, self.horizon
        z_goal = torch.as_tensor(model.encode(world.render(goal, size)))
        z0 = torch.as_tensor(model.encode(world.render(start, size)))
        # Before the first frame the agent stood still: repeat it, with zero actions.
        z_hist = z0[:, None].repeat(1, h, 1)
        a_hist = torch.zeros(n, h - 1, 2)
        mu = torch.zeros(n, H, 2)
        s = start
        dist = np.empty((n, self.budget))
        for step in range(self.budget):
            std = torch.ones(n, H, 2)
            for _ in range(self.n_iters):
                cand = (mu[:, None] + std[:, None] * torch.randn(n, S, H, 2, generator=gen)
                        ).clamp(-1, 1)
                traj = model.rollout(z_hist.repeat_interleave(S, 0),
                                     a_hist.repeat_interleave(S, 0), cand.reshape(n * S, H, 2))
                cost = (traj[:, -1] - z_goal.repeat_interleave(S, 0)).pow(2).sum(-1)
                elite = cost.reshape(n, S).topk(self.n_elites, largest=False).indices
                best = torch.gather(cand, 1, elite[..., None, None].expand(-1, -1, H, 2))
                mu, std = best.mean(1), best.std(1) + 1e-3
            action = mu[:, 0]
            s = world.step(s, action.numpy())
            dist[:, step] = np.linalg.norm(s[:, :2] - goal[:, :2], axis=1)
            z = torch.as_tensor(model.encode(world.render(s, size)))
            z_hist = torch.cat([z_hist[:, 1:], z[:, None]], 1)
            a_hist = torch.cat([a_hist, action[:, None]], 1)[:, 1:]
            mu = torch.cat([mu[:, 1:], torch.zeros(n, 1, 2)], 1)  # warm start, shifted
        return dist

    def _random(self, world, start, goal, rng) -> np.ndarray:
        s, dist = start, np.empty((len(start), self.budget))
        for k, a in enumerate(np.moveaxis(world.random_actions(len(start), self.budget, rng),
                                          1, 0)):
            s = world.step(s, a)
            dist[:, k] = np.linalg.norm(s[:, :2] - goal[:, :2], axis=1)
        return dist

    @classmethod
    def plot(cls, result: ProbeResult):
        fig, axes = new_figure(2, width="double", aspect=0.7)
        ax_d, ax_s = axes[0]
        steps = np.arange(1, len(result.arrays["plan_distance"]) + 1)
        ax_d.plot(steps, result.arrays["plan_distance"], color=PALETTE[0], label="CEM planner")
        ax_d.plot(steps, result.arrays["random_distance"], color=BASELINE_COLOR, ls="--",
                  label="random actions")
        ax_d.axhline(result.info["tolerance"], color="k", lw=0.6, ls=":", label="tolerance")
        ax_d.axhline(result.info["mean_initial_distance"], color=PALETTE[1], lw=0.6,
                     label="start")
        ax_d.set_xlabel("environment step")
        ax_d.set_ylabel("mean true distance to goal")
        ax_d.set_title("goal reaching")
        # under the panels: inside the axes it covers the random-actions line, which stays high
        fig.legend(*ax_d.get_legend_handles_labels(), loc="outside lower center", ncol=4,
                   frameon=False)
        ms = [result.metric("success_rate"),
              result.metric("success_rate", baseline="random-actions")]
        v = np.array([m.value for m in ms])
        err = np.abs(np.array([[m.ci_low, m.ci_high] for m in ms]).T - v)
        ax_s.bar([0, 1], v, yerr=err, capsize=3, color=[PALETTE[0], BASELINE_COLOR])
        ax_s.set_xticks([0, 1], ["CEM planner", "random actions"])
        ax_s.set_ylim(0, 1)
        ax_s.set_ylabel("success rate (95% CI)")
        ax_s.set_title(f"held-out pairs (n={ms[0].n})")
        return fig


class OracleWorldModel:
    """A stand-in world model for :meth:`Probe.example_input`: ``encode`` is the centroid of
    the coloured pixels (the object's position), ``predict`` the last position plus the
    action, the true wall-free dynamics of the ``tworoom`` world. No training, no checkpoint.
    """

    SCALE = 10.0

    def __init__(self):
        from geoprobe.jepa.worlds import TwoRoom

        self.world = TwoRoom()
        self.image_size = 32
        self.history = 2

    def encode(self, frames):
        f = np.asarray(frames, float) / 255
        w = (f.max(-1) - f.min(-1) > 0.3).astype(float)
        c = (np.arange(f.shape[1]) + 0.5) / f.shape[1]
        n = np.maximum(w.sum((1, 2)), 1)
        return self.SCALE * np.stack([(w * c[None, None]).sum((1, 2)) / n,
                                      (w * c[None, :, None]).sum((1, 2)) / n], 1)

    def predict(self, z, a):
        return z[:, -1] + self.SCALE * self.world.max_step * np.clip(a[:, -1], -1, 1)

    def rollout(self, z_hist, a_hist, plan):
        z = z_hist[:, -1]
        out = []
        for k in range(plan.shape[1]):
            z = z + self.SCALE * self.world.max_step * plan[:, k].clamp(-1, 1)
            out.append(z)
        return torch.stack(out, 1)
