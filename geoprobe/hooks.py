"""Record what named submodules of any torch model output, through temporary forward hooks.

Submodules are chosen by name patterns over the names of ``model.named_modules()``
(``encoder.layer.*.output`` for a BERT-style Hugging Face model, ``blocks.*.hook_resid_post``
for TransformerLens). A pattern is matched one dotted component at a time with
:func:`fnmatch.fnmatchcase`, so ``*`` never crosses a dot: ``encoder.layer.*.output`` matches
``encoder.layer.3.output`` but not ``encoder.layer.3.attention.output`` (plain fnmatch would
take both, doubling the layers silently); a ``**`` component matches any number of
components. The model is never edited: the hooks
exist only inside a :class:`ModuleRecorder` context and are removed on the way out, also when
the forward pass raises.

What a module's output is: a tensor is taken as is; for a tuple or list, or a mapping such as a
Hugging Face ``ModelOutput``, the **first tensor** it holds (a transformer block returns
``(hidden_states, attentions, ...)``, and ``hidden_states`` is what a probe wants).

A module that runs more than once in one forward pass (a shared activation module, a
weight-tied block applied repeatedly) is refused with an error naming it: its calls have no
single output per input, and numbering them would give layers that need not line up across
inputs (the number of calls may depend on the input). Hook the distinct modules that contain
each call instead.

torch is imported only when a recorder is used.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence

from .errors import GeoprobeError
from .safepath import check_name

_SHOWN = 8  # module names listed in an error


def match_modules(model, patterns: Sequence[str]) -> list[str]:
    """Names of the submodules of ``model`` that match any of ``patterns``, in
    ``named_modules()`` order (the order the model defines them in, usually depth order).

    Raises GeoprobeError naming a pattern that matches nothing, with a few module names.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns:
        raise GeoprobeError("no module patterns given")
    names = [name for name, _ in model.named_modules() if name]  # "" is the model itself
    for pattern in patterns:
        if not any(name_matches(n, pattern) for n in names):
            raise GeoprobeError(f"module pattern {pattern!r} matches no submodule of "
                                f"{type(model).__name__}; its modules include "
                                f"{_examples(names)}")
    return [n for n in names if any(name_matches(n, p) for p in patterns)]


def name_matches(name: str, pattern: str) -> bool:
    """Whether the dotted module ``name`` matches ``pattern`` component by component."""
    return _match(name.split("."), pattern.split("."))


def _match(parts: list, pats: list) -> bool:
    if not pats:
        return not parts
    if pats[0] == "**":
        return any(_match(parts[i:], pats[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pats[0]) and _match(parts[1:], pats[1:])


def _examples(names: Sequence[str]) -> str:
    # the deepest repeated blocks are what one usually wants: show a spread of names
    step = max(1, len(names) // _SHOWN)
    shown = ", ".join(names[::step][:_SHOWN])
    return shown + (f" ... ({len(names)} in all)" if len(names) > _SHOWN else "")


def layer_names(modules: Sequence[str]) -> list[str]:
    """The embedding-set layer name of each module: its own name when that is a safe file
    name (:func:`geoprobe.safepath.check_name`; every dotted Python attribute path is), else
    ``module_<i>`` by position, the real name being kept in the provenance (``modules``)."""
    out = []
    for i, name in enumerate(modules):
        try:
            out.append(check_name(name, what="module"))
        except GeoprobeError:
            out.append(f"module_{i}")
    return out


def first_tensor(output, *, name: str = "module"):
    """The tensor of a module's output: itself, or the first tensor of a tuple, list or
    mapping (e.g. a Hugging Face ``ModelOutput``), searched depth-first."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    values = output.values() if isinstance(output, Mapping) else (
        output if isinstance(output, (tuple, list)) else ())
    for value in values:
        try:
            return first_tensor(value, name=name)
        except GeoprobeError:
            continue
    raise GeoprobeError(f"module {name!r} returned {type(output).__name__}, which holds no tensor")


class ModuleRecorder:
    """Forward hooks on the submodules matching ``patterns``, for the duration of a ``with``.

    Parameters
    ----------
    model : torch.nn.Module
    patterns : sequence of str
        Patterns over ``model.named_modules()`` names, matched per dotted component.

    Attributes
    ----------
    modules : list of str, the matched module names in model order
    outputs : dict of module name -> tensor, the last forward pass's outputs (detached)

    Examples
    --------
    >>> with ModuleRecorder(model, ["encoder.layer.*.output"]) as rec:   # doctest: +SKIP
    ...     model(**inputs)
    ...     states = rec.stacked()          # (n_modules, batch, tokens, dim)
    """

    def __init__(self, model, patterns: Sequence[str]):
        self.model = model
        self.modules = match_modules(model, patterns)
        self.outputs: dict = {}
        self._handles: list = []

    def __enter__(self) -> "ModuleRecorder":
        named = dict(self.model.named_modules())
        try:
            for name in self.modules:
                self._handles.append(named[name].register_forward_hook(self._hook(name)))
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._remove()

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.outputs.clear()

    def _hook(self, name: str):
        def record(module, args, output):
            if name in self.outputs:
                # a module called twice per forward (weight sharing, a reused activation)
                # has no one output per input: refuse rather than keep one call's silently.
                # Numbering the calls ("act#0", "act#1") was rejected: the number of calls
                # can depend on the input (early exit, loops), so layers would not line up.
                raise GeoprobeError(
                    f"module {name!r} ran more than once in one forward pass (a module reused "
                    "within the model, e.g. a shared activation or a weight-tied block, has "
                    "no single output per input); hook a module that runs once per forward, "
                    "such as the block that contains each call")
            self.outputs[name] = first_tensor(output, name=name).detach()
        return record

    def clear(self) -> None:
        """Forget the recorded outputs (call before each forward pass)."""
        self.outputs.clear()

    def stacked(self):
        """The recorded outputs stacked, shape (n_modules, *output_shape), e.g.
        (n_modules, batch, tokens, dim); the outputs are cleared.

        Raises GeoprobeError naming a module that did not run, or two modules whose outputs
        have different shapes (they cannot share one embedding set).
        """
        import torch

        missing = [n for n in self.modules if n not in self.outputs]
        if missing:
            raise GeoprobeError(f"module(s) {', '.join(map(repr, missing[:_SHOWN]))} did not "
                                "run in the forward pass")
        tensors = [self.outputs[n] for n in self.modules]
        for name, t in zip(self.modules, tensors):
            if t.shape != tensors[0].shape:
                raise GeoprobeError(
                    f"module {name!r} outputs shape {tuple(t.shape)} but {self.modules[0]!r} "
                    f"outputs {tuple(tensors[0].shape)}: outputs of different shapes cannot "
                    "be stacked into one set; choose modules of one kind")
        self.outputs.clear()
        return torch.stack(tensors)
