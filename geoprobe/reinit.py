"""Random-init twins of torch models built in Python (a factory), not from a model directory.

A model directory's twin is ``from_config`` under a seed (:func:`geoprobe.hf.load_model`). A
model that a factory function builds has no config to re-initialise from, so its twin is
made in two steps, both under ``torch.manual_seed(seed)`` in a forked RNG (the caller's
torch state is untouched):

1. the factory runs again, so that parameters it draws itself come out fresh (a factory that
   loads pretrained weights gives them back unchanged, hence step 2);
2. every submodule with a ``reset_parameters`` (or torch's private ``_reset_parameters``, as
   ``nn.MultiheadAttention`` has) calls it, in ``named_modules()`` order: torch's layers
   (Linear, Conv, norms, embeddings) redraw their default initialisation.

A parameter that neither step touched (owned by a module without a reset method) and that
still equals the real model's is a weight the twin would share with the real model: the twin
is refused with an error naming it, rather than being silently part pretrained. Give such
modules a ``reset_parameters``, or make the factory draw them.

torch is imported only when a twin is made.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import GeoprobeError
from .stats import preserves_torch_rng

_RESETS = ("reset_parameters", "_reset_parameters")
_SHOWN = 5  # parameter names listed in an error


@preserves_torch_rng
def factory_twin(factory: Callable, real, seed: int = 0):
    """The random-init twin of ``real``, the model ``factory()`` built.

    Parameters
    ----------
    factory : callable with no arguments returning a ``torch.nn.Module``
    real : torch.nn.Module, the model to compare against (not modified)
    seed : int, torch seed of the re-initialisation

    Returns
    -------
    torch.nn.Module on the CPU in the factory's dtype, in eval mode

    Raises
    ------
    GeoprobeError
        The factory does not return a module, or parameters would keep the real weights.
    """
    import torch

    torch.manual_seed(seed)
    twin = factory()
    if not isinstance(twin, torch.nn.Module):
        raise GeoprobeError(f"the model factory returned {type(twin).__name__}, not a "
                            "torch.nn.Module")
    reset = set()
    for module in twin.modules():
        method = next((getattr(module, n) for n in _RESETS if callable(getattr(module, n, None))),
                      None)
        if method is not None:
            method()
            reset.update(id(p) for p in module.parameters(recurse=False))
    real_params = dict(real.named_parameters())
    shared = [name for name, p in twin.named_parameters()
              if id(p) not in reset and name in real_params
              and p.shape == real_params[name].shape
              and _same(p, real_params[name])]
    if shared:
        more = f" and {len(shared) - _SHOWN} more" if len(shared) > _SHOWN else ""
        raise GeoprobeError(
            f"cannot make a random-init twin: parameter(s) {', '.join(shared[:_SHOWN])}{more} "
            "keep the real model's values after re-running the factory under a new seed and "
            "reset_parameters() (their modules have none); give those modules a "
            "reset_parameters method, or use --no-twin")
    return twin.eval()


def _same(fresh, real) -> bool:
    """Whether a twin parameter equals the real model's, compared in the real one's dtype
    (the real model may already run in a lower precision) on the CPU."""
    import torch

    return torch.equal(fresh.detach().to(real.dtype).cpu(), real.detach().cpu())
