"""Embedding sets from any torch model: hooked module outputs, one row per position or input.

:func:`extract_activations` runs a model over batches, records the outputs of the submodules
that name patterns choose (:class:`geoprobe.hooks.ModuleRecorder`), turns each batch into rows
and writes them to an embedding set, one layer per module. Outputs are expected batch-first:
shape (batch, dim) gives one row per input; (batch, positions, dim) gives one row per position
(``pool="none"``, padding dropped through the attention mask) or one per input (``"mean"``,
``"first"``, ``"last"`` over the attended positions).

Outputs with more than three dims, such as a convolution's feature maps (batch, channels, H, W),
are read channels first, torch's convention: each spatial position is a position whose vector
is its channels, so (batch, C, H, W) becomes (batch, H * W, C), positions in row-major order,
and ``pool`` applies as above (``"mean"`` is global average pooling, ``"none"`` a row per
spatial position). ``flatten=True`` instead makes every output one vector per input, of
shape (batch, prod(rest)), e.g. C * H * W; it needs inputs of one shape (no attention mask).

torch is imported only when activations are extracted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .device import to_numpy
from .embeddings import EmbeddingSet, EmbeddingWriter
from .errors import GeoprobeError
from .hooks import ModuleRecorder, layer_names
from .items import ID_COLUMN
from .progress import progress

POOLS = ("none", "mean", "first", "last")
#: how outputs of more than three dims are read (recorded in the provenance when it applies)
SPATIAL_RULE = "(batch, channels, *spatial) -> (batch, spatial positions row-major, channels)"
#: the mask key looked up in dict inputs (the Hugging Face name)
MASK_KEY = "attention_mask"


def extract_activations(model, batches: Iterable, modules: Sequence[str], *, out=None,
                        pool: str = "none", dtype="float32", provenance: Mapping | None = None,
                        show_progress: bool = False, flatten: bool = False):
    """Record the outputs of ``model``'s submodules matching ``modules`` over ``batches``.

    Parameters
    ----------
    model : torch.nn.Module
        Run under ``torch.no_grad()`` in eval mode; every submodule's train/eval mode is
        restored afterwards. Each batch's tensors are moved to the device of the model's
        first parameter (or buffer) batch by batch; the rows come back to the CPU.
    batches : iterable of ``(inputs, items)`` pairs (``items`` a mapping or None), or of
        bare ``inputs``
        ``inputs`` goes to ``model(**inputs)`` when it is a dict, else ``model(inputs)``. A dict
        with ``attention_mask`` of shape (batch, positions) marks the real positions; without
        one every position is real. ``items`` (optional) maps column names to arrays of shape
        (batch,), one value per input, or (batch, positions), one per position (``pool="none"``
        only). An ``item_id`` column of shape (batch,) names the inputs; rows of positions then
        get ``"<item_id>:<position>"``. Without it inputs are numbered from 0 across batches.
    modules : sequence of str
        Patterns over ``model.named_modules()`` names (see :mod:`geoprobe.hooks`: ``*`` stays
        within one dotted component), e.g. ``["encoder.layer.*.output"]``.
        Each matched module is one layer, named by its module name (see
        :func:`geoprobe.hooks.layer_names`), in model order. A tuple or ``ModelOutput`` output
        contributes its first tensor.
    out : path, optional
        Stream the rows into an on-disk embedding set there (no layer is ever whole in memory);
        default: return an in-memory set.
    pool : "none", "mean", "first" or "last"
        For outputs of shape (batch, positions, dim): one row per real position, or the mean,
        first or last real position of each input. Outputs of shape (batch, dim) always give
        one row per input; outputs (batch, channels, *spatial) are pooled over their spatial
        positions (see the module docstring).
    flatten : bool
        Flatten each input's output into one vector, shape (batch, prod(rest)), instead of
        reading positions; one row per input, ``pool`` unused.
    dtype : storage dtype of the vectors ("float32" or "float16")
    provenance : extra provenance entries

    Returns
    -------
    EmbeddingSet with ``n_modules`` layers of shape (n_rows, dim) (opened from ``out`` when
    given). Item columns: the given ones, ``input_index`` (running input number) and, for
    rows of positions, ``position`` (0-based among the input's real positions).
    """
    import torch

    if pool not in POOLS:
        raise GeoprobeError(f"pool must be one of {POOLS}, got {pool!r}")
    recorder = ModuleRecorder(model, modules)
    names = layer_names(recorder.modules)
    prov = {"modules": recorder.modules, "module_patterns": list(modules), "pooling": pool,
            "module_output": "first tensor of tuple or ModelOutput outputs",
            "model_class": type(model).__name__, **(provenance or {})}
    if flatten:  # recorded only when asked, so default sets keep their provenance unchanged
        prov["flatten"] = True
    sink = RowSink(out, names, dtype, prov)
    modes = [(m, m.training) for m in model.modules()]
    device = model_device(model)
    n_inputs = 0
    try:
        model.eval()
        with recorder, torch.no_grad(), sink:
            for batch in progress(batches, enable=show_progress, unit="batch", desc="extract"):
                inputs, items = _split(batch)
                inputs = to_device(inputs, device)
                recorder.clear()
                if isinstance(inputs, Mapping):
                    model(**inputs)
                else:
                    model(inputs)
                states = recorder.stacked()
                mask = inputs.get(MASK_KEY) if isinstance(inputs, Mapping) else None
                if states.ndim > 4 and not flatten:
                    prov["spatial_outputs"] = SPATIAL_RULE
                vectors, columns = batch_rows(states, mask, items, pool=pool, start=n_inputs,
                                              flatten=flatten)
                n_inputs += states.shape[1]
                sink.append(vectors, columns)
    finally:
        for m, training in modes:  # per submodule: a model may mix train and eval parts
            m.training = training
    return sink.result()


def model_device(model):
    """The device of ``model``'s first parameter or buffer; the CPU for a model with none."""
    import torch

    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def to_device(inputs, device):
    """``inputs`` (a tensor, or a mapping holding tensors among other values) on ``device``;
    a tensor already there is returned as is."""
    import torch

    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, Mapping):
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    return inputs


def token_batches(lengths: Sequence[int], max_tokens: int) -> list[slice]:
    """Consecutive batches whose padded size (inputs x longest input) stays within
    ``max_tokens``; an input longer than the budget is a batch of its own.

    Order is kept (rows come out in input order), so short and long inputs still mix: the
    budget bounds memory, it does not minimise padding.
    """
    if max_tokens < 1:
        raise GeoprobeError(f"max_tokens must be at least 1, got {max_tokens}")
    out, start, longest = [], 0, 0
    for i, n in enumerate(lengths):
        longest_with = max(longest, int(n))
        if i > start and (i - start + 1) * longest_with > max_tokens:
            out.append(slice(start, i))
            start, longest_with = i, int(n)
        longest = longest_with
    if len(lengths):
        out.append(slice(start, len(lengths)))
    return out


def _split(batch):
    """``(inputs, items)`` of a batch given as that pair or as bare inputs."""
    if (isinstance(batch, tuple) and len(batch) == 2
            and (batch[1] is None or isinstance(batch[1], Mapping))):
        return batch
    return batch, None


def batch_rows(states, mask, items: Mapping | None, *, pool: str, start: int = 0,
               flatten: bool = False):
    """The rows of one batch.

    Parameters
    ----------
    states : tensor of shape (n_modules, batch, dim), (n_modules, batch, positions, dim) or
        (n_modules, batch, channels, *spatial) (read as (n_modules, batch, prod(spatial),
        channels); see the module docstring)
    mask : tensor or array of shape (batch, positions), nonzero at real positions, or None
    items : mapping of column name to array of shape (batch,) or (batch, positions), or None
    pool : see :func:`extract_activations`
    start : the batch's first input number (the ``input_index`` column)
    flatten : one vector per input, of shape (prod(states.shape[2:]),)

    Returns
    -------
    vectors : float32 ndarray of shape (n_modules, n_rows, dim)
    columns : dict of column name -> ndarray of shape (n_rows,)
    """
    import torch

    if states.ndim < 3:
        raise GeoprobeError(f"module outputs of shape {tuple(states.shape[1:])}: expected "
                            "(batch, dim), (batch, positions, dim) or (batch, channels, "
                            "*spatial), batch first")
    if flatten:
        if mask is not None:
            raise GeoprobeError("flatten needs inputs of one shape: with an attention mask "
                                "the flattened vectors would include padding")
        states = states.flatten(2)
    elif states.ndim > 4:
        states = states.flatten(3).transpose(2, 3)  # channels first -> a row per position
    n_batch = states.shape[1]
    states = states.float().cpu()  # pooling and rows in float32 on the CPU, whatever ran
    index = np.arange(start, start + n_batch)
    items = {k: np.asarray(v) for k, v in (items or {}).items()}
    for k, v in items.items():
        if v.shape[:1] != (n_batch,) or v.ndim > 2:
            raise GeoprobeError(f"item column {k!r} has shape {v.shape}; expected ({n_batch},) "
                                f"or ({n_batch}, positions) for this batch")
    if states.ndim == 3 or pool != "none":
        per_position = [k for k, v in items.items() if v.ndim == 2]
        if per_position:
            raise GeoprobeError(f"item column(s) {per_position} give one value per position; "
                                "rows are one per input (pool or (batch, dim) outputs)")
        if states.ndim == 4:
            states = _pool(states, _mask(mask, states), pool)
        columns = {**items, "input_index": index}
        columns.setdefault(ID_COLUMN, index.astype(str))
        return to_numpy(states), columns
    real = _mask(mask, states)
    b, t = (to_numpy(x) for x in torch.nonzero(real, as_tuple=True))
    position = to_numpy(real.cumsum(1) - 1)[b, t]  # among real positions: left padding too
    columns = {k: (v[b] if v.ndim == 1 else v[b, t]) for k, v in items.items()}
    ids = items[ID_COLUMN] if ID_COLUMN in items and items[ID_COLUMN].ndim == 1 else index
    if ID_COLUMN not in items or items[ID_COLUMN].ndim == 1:
        columns[ID_COLUMN] = np.char.add(np.char.add(ids[b].astype(str), ":"),
                                         position.astype(str))
    columns.update(input_index=index[b], position=position.astype(np.int64))
    return to_numpy(states[:, torch.from_numpy(b), torch.from_numpy(t)]), columns


def _mask(mask, states):
    """Boolean real-position mask of shape (batch, positions), checked against ``states``
    (n_modules, batch, positions, dim); all true without a mask."""
    import torch

    n_batch, n_pos = states.shape[1:3]
    if mask is None:
        return torch.ones((n_batch, n_pos), dtype=torch.bool)
    real = torch.as_tensor(mask).to("cpu") != 0
    if tuple(real.shape) != (n_batch, n_pos):
        raise GeoprobeError(f"attention mask of shape {tuple(real.shape)} for module outputs "
                            f"of {n_batch} inputs x {n_pos} positions")
    if not real.any(1).all():
        raise GeoprobeError("an input has no real position (its attention mask is all zero)")
    return real


def _pool(states, real, pool: str):
    """(n_modules, batch, positions, dim) -> (n_modules, batch, dim) over real positions."""
    import torch

    if pool == "mean":
        weights = real.to(states.dtype)
        return (states * weights[None, :, :, None]).sum(2) / weights.sum(1)[None, :, None]
    n_pos = real.shape[1]
    # argmax returns the first maximum: the first real position, or the last one of the
    # reversed mask (left- or right-padded inputs alike)
    pick = (real.int().argmax(1) if pool == "first"
            else n_pos - 1 - real.flip(1).int().argmax(1))
    return states[:, torch.arange(real.shape[0]), pick]


class RowSink:
    """Where rows go: an EmbeddingWriter opened at the first block (the width of hooked
    module outputs is known only then), or blocks kept in memory.

    Use as a context manager; an exception inside it removes the half-written set.
    ``provenance`` is the dict the set will record; entries added to it before the first
    block are recorded, later ones go through :meth:`update_provenance`.
    """

    def __init__(self, out, names, dtype, provenance):
        self.out = Path(out) if out is not None else None
        self.names, self.dtype, self.provenance = names, np.dtype(dtype), provenance
        self.blocks: list = []
        self.writer: EmbeddingWriter | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "RowSink":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stack.__exit__(exc_type, exc, tb)  # an exception removes the half-written set

    @property
    def n_rows(self) -> int:
        """Rows appended so far."""
        if self.writer is not None:
            return self.writer.n_items
        return sum(v.shape[1] for v, _ in self.blocks)

    def update_provenance(self, **entries) -> None:
        """Add provenance entries, also after the writer has opened."""
        self.provenance.update(entries)
        if self.writer is not None:
            self.writer.provenance.update(entries)

    def append(self, vectors: np.ndarray, columns: dict) -> None:
        """One block: ``vectors`` of shape (n_layers, n_rows, dim), ``columns`` of (n_rows,)."""
        if not vectors.shape[1]:
            return
        if self.out is None:
            if self.blocks and set(columns) != set(self.blocks[0][1]):
                raise GeoprobeError(f"item columns changed between batches: {sorted(columns)} "
                                    f"vs {sorted(self.blocks[0][1])}")
            self.blocks.append((vectors.astype(self.dtype, copy=False), columns))
            return
        self.open(vectors.shape[2])
        self.writer.append(vectors.astype(self.dtype, copy=False), columns)

    def open(self, dim: int) -> None:
        """Open the on-disk set for rows of width ``dim`` (once; a no-op in memory). Call it
        from the thread that will close the sink: the set's write lock belongs to a thread."""
        if self.writer is None and self.out is not None:
            self.writer = self._stack.enter_context(EmbeddingWriter(
                self.out, dim=dim, layer_names=self.names, dtype=self.dtype,
                provenance=self.provenance))

    def result(self) -> EmbeddingSet:
        if self.out is not None:
            if self.writer is None:
                raise GeoprobeError("no rows to extract: the batches were empty")
            return EmbeddingSet.open(self.out, validate=False)
        if not self.blocks:
            raise GeoprobeError("no rows to extract: the batches were empty")
        vectors = np.concatenate([v for v, _ in self.blocks], axis=1)
        columns = {k: np.concatenate([c[k] for _, c in self.blocks]) for k in self.blocks[0][1]}
        return EmbeddingSet(vectors, columns, layer_names=self.names,
                            provenance={**self.provenance, "dtype": self.dtype.name,
                                        "layer_names": self.names},
                            source="activations")
