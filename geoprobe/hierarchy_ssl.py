"""Token-level and latent-level self-supervision on tree-structured sequences.

Two learners share one encoder, :class:`TreeEncoder`, whose architecture follows the data's
tree (a "tree CNN": filter size = stride = ``s``, as in the random hierarchy model papers):
tokens are embedded (``h_0``, shape (n, s^L, width)), and level ``l`` combines each ``s``
consecutive level ``l-1`` vectors with a one-hidden-layer MLP shared across positions,
``h_l[j] = MLP_l(concat(h_{l-1}[s j], ..., h_{l-1}[s j + s - 1]))``, up to the root ``h_L``
(n, 1, width). ``h_l[j]`` sees exactly the tokens below the level ``l`` node ``j``.

Token-level (:class:`TokenLearner`; Cagnetta & Wyart 2024's last-token prediction)
    The last token is replaced by a mask symbol and predicted from the root vector ``h_L``
    by a linear head (cross-entropy over the ``v`` tokens).
Latent-level (:class:`LatentLearner`; JEPA / data2vec style, with LeJEPA's SIGReg)
    At every level ``l = 0..L-1`` and every level ``l+1`` node, a predictor MLP reads the
    vectors of the node's first ``s-1`` children and predicts the vector of its last child:
    ``loss = sum_l mean ||P_l(h_l[first s-1]) - h_l[last]||^2 + lam * sum_l SIGReg(h_l)``.
    The target is the same encoder's vector with gradients flowing into it (as LeWorldModel
    does: no EMA teacher, no stop-gradient); SIGReg on every level's vectors (a batch-sized
    random subset of its nodes, all positions pooled) keeps them from collapsing to a constant,
    which would predict perfectly. The last child's subtree is disjoint from its siblings',
    so no masking is needed: the prediction can only use what the siblings' subtrees share
    with it, which under the RHM is their common parent's rule, i.e. the latents.

Where we differ from data2vec / I-JEPA: each node is predicted from its siblings only (its
same-level context inside the parent), not from all the unmasked context, and there is no
EMA target (see above).

Both learners train with AdamW for a fixed number of steps on minibatches drawn with
replacement from the training samples, so a sweep over the number of samples changes the
data, not the optimisation budget. :meth:`represent` returns the encoder's vectors of every
node at every level on clean (unmasked) inputs.
"""

from __future__ import annotations

import numpy as np

from . import threads
from .sigreg import sigreg


def _torch():
    import torch

    return torch


def _mlp(nn, d_in: int, hidden: int, d_out: int):
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


def _encoder_class():
    torch = _torch()
    nn = torch.nn

    class TreeEncoder(nn.Module):
        """Tree CNN over (n, s^L) int tokens; ``forward`` returns [h_0, ..., h_L], h_l of
        shape (n, s^(L-l), width). Token index ``v`` is the mask symbol."""

        def __init__(self, v: int, s: int, depth: int, width: int, hidden: int):
            super().__init__()
            self.s = s
            self.embed = nn.Embedding(v + 1, width)
            self.levels = nn.ModuleList(_mlp(nn, s * width, hidden, width) for _ in range(depth))

        def forward(self, tokens):
            h = self.embed(tokens)
            out = [h]
            for f in self.levels:
                n, p, d = h.shape
                h = f(h.reshape(n, p // self.s, self.s * d))
                out.append(h)
            return out

    return TreeEncoder


class _Learner:
    """Shared training loop; subclasses define ``_build`` (heads) and ``_loss``.

    Parameters
    ----------
    v, s, depth : the RHM's vocabulary, branching factor and number of levels
    width : int, node vector size; hidden : int, hidden units of every MLP
    steps : int, Adam steps; batch_size : int; lr, weight_decay : float
    seed : int, seeds the initialisation and the minibatches

    Attributes
    ----------
    encoder_ : the trained TreeEncoder; losses_ : ndarray (steps,) of training losses
    """

    def __init__(self, v: int, s: int, depth: int, *, width: int = 32, hidden: int = 64,
                 steps: int = 1000, batch_size: int = 128, lr: float = 3e-3,
                 weight_decay: float = 1e-4, seed: int = 0):
        self.v, self.s, self.depth = v, s, depth
        self.width, self.hidden, self.steps = width, hidden, steps
        self.batch_size, self.lr, self.weight_decay, self.seed = batch_size, lr, weight_decay, seed

    def fit(self, tokens: np.ndarray) -> "_Learner":
        """Train on ``tokens`` (n, s^L) ints in [0, v); ``steps=0`` keeps the random init."""
        torch = _torch()
        torch.manual_seed(self.seed)
        self.encoder_ = _encoder_class()(self.v, self.s, self.depth, self.width, self.hidden)
        heads = self._build(torch.nn)
        params = list(self.encoder_.parameters()) + list(heads.parameters())
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(self.seed)
        data = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
        losses = np.empty(self.steps)
        # small matrices: extra intra-op threads only contend (geoprobe's thread policy)
        with threads.policy():
            for step in range(self.steps):
                batch = data[torch.randint(0, data.shape[0], (self.batch_size,), generator=gen)]
                loss = self._loss(torch, batch, gen)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses[step] = float(loss.detach())
        self.losses_ = losses
        return self

    def represent(self, tokens: np.ndarray) -> list[np.ndarray]:
        """Node vectors of clean ``tokens`` (n, s^L): a list of depth+1 float32 arrays, entry
        ``l`` of shape (n, s^(L-l), width)."""
        torch = _torch()
        with torch.no_grad():
            hs = self.encoder_(torch.as_tensor(np.asarray(tokens), dtype=torch.long))
        return [h.numpy().astype(np.float32) for h in hs]


class TokenLearner(_Learner):
    """Masked last-token prediction from the root vector (see the module docstring)."""

    kind = "token"

    def _build(self, nn):
        self.head_ = nn.Linear(self.width, self.v)
        return self.head_

    def _loss(self, torch, batch, gen):
        masked = batch.clone()
        masked[:, -1] = self.v
        root = self.encoder_(masked)[-1][:, 0]
        return torch.nn.functional.cross_entropy(self.head_(root), batch[:, -1])


class LatentLearner(_Learner):
    """Same-level latent prediction with SIGReg (see the module docstring).

    Extra parameters: ``lam`` (SIGReg weight), ``n_directions`` (SIGReg's random directions).
    """

    kind = "latent"

    def __init__(self, v: int, s: int, depth: int, *, lam: float = 1.0,
                 n_directions: int = 64, **kwargs):
        super().__init__(v, s, depth, **kwargs)
        self.lam, self.n_directions = lam, n_directions

    def _build(self, nn):
        self.predictors_ = nn.ModuleList(
            _mlp(nn, (self.s - 1) * self.width, self.hidden, self.width)
            for _ in range(self.depth))
        return self.predictors_

    def _loss(self, torch, batch, gen):
        hs = self.encoder_(batch)
        total = 0.0
        for level, pred in enumerate(self.predictors_):
            h = hs[level]
            n, p, d = h.shape
            groups = h.reshape(n, p // self.s, self.s, d)
            guess = pred(groups[:, :, :-1].reshape(n, p // self.s, (self.s - 1) * d))
            total = total + ((guess - groups[:, :, -1]) ** 2).sum(-1).mean()
            # SIGReg on a batch-sized subset of the level's nodes: the statistic needs
            # samples, not all n * p of them, and its cos/sin dominate the step's cost
            rows = torch.randint(0, n * p, (n,), generator=gen)
            total = total + self.lam * sigreg(h.reshape(n * p, d)[rows], self.n_directions,
                                              generator=gen)
        return total


LEARNERS = {"token": TokenLearner, "latent": LatentLearner}
