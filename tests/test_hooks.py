"""Hook-based extraction from any torch module: recorded outputs against the submodules run by
hand, pattern and shape errors, hooks always removed, modes restored, pooling, streaming."""

import numpy as np
import pytest
import torch
from torch import nn

from geoprobe import EmbeddingSet, extract_activations
from geoprobe.errors import GeoprobeError
from geoprobe.hooks import ModuleRecorder, layer_names, match_modules


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.lin, self.act = nn.Linear(d, d), nn.Tanh()

    def forward(self, x):
        return self.act(self.lin(x)), "not a tensor"   # tuple output, like a HF layer


class Tiny(nn.Module):
    """(batch, positions, 3) -> (batch, positions, 2); dropout makes eval mode matter."""

    def __init__(self, d=4, n=3):
        super().__init__()
        self.embed, self.drop = nn.Linear(3, d), nn.Dropout(0.5)
        self.blocks = nn.ModuleList(Block(d) for _ in range(n))
        self.head = nn.Linear(d, 2)
        self.fail = False

    def forward(self, x, attention_mask=None):
        h = self.drop(self.embed(x))
        for block in self.blocks:
            h = block(h)[0]
        if self.fail:
            raise RuntimeError("boom")
        return self.head(h)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return Tiny()


def by_hand(model, x):
    """The three blocks' outputs run submodule by submodule: (3, batch, positions, 4)."""
    with torch.no_grad():
        h, outs = model.embed(x), []
        for block in model.blocks:
            h = block.act(block.lin(h))
            outs.append(h)
    return torch.stack(outs).numpy()


def batches(x, mask=None, size=2):
    for s in range(0, len(x), size):
        inputs = {"x": x[s:s + size]}
        if mask is not None:
            inputs["attention_mask"] = mask[s:s + size]
        yield inputs, {"item_id": np.array([f"in{i}" for i in range(s, s + len(inputs["x"]))])}


def test_patterns_match_per_component_and_errors_list_modules(model):
    assert match_modules(model, ["blocks.*"]) == ["blocks.0", "blocks.1", "blocks.2"]
    assert match_modules(model, ["blocks.*.act", "head"]) == [
        "blocks.0.act", "blocks.1.act", "blocks.2.act", "head"]
    assert match_modules(model, ["**.lin"]) == [f"blocks.{i}.lin" for i in range(3)]
    with pytest.raises(GeoprobeError, match=r"'layers\.\*' matches no submodule of Tiny; "
                                            r"its modules include embed") as err:
        match_modules(model, ["layers.*"])
    assert "\n" not in str(err.value)
    assert layer_names(["blocks.0", "a b", "blocks.1"]) == ["blocks.0", "module_1", "blocks.1"]


def test_token_rows_equal_the_submodules_run_by_hand(model):
    x = torch.randn(5, 4, 3)
    emb = extract_activations(model, batches(x), ["blocks.*"])
    assert emb.layer_names == ["blocks.0", "blocks.1", "blocks.2"]
    assert emb.shape == (3, 5 * 4, 4)
    expected = by_hand(model, x).reshape(3, 20, 4)
    assert np.array_equal(np.stack([emb.layer(i) for i in range(3)]), expected)
    assert emb.ids[:5].tolist() == ["in0:0", "in0:1", "in0:2", "in0:3", "in1:0"]
    assert emb.items["position"].tolist() == [0, 1, 2, 3] * 5
    assert emb.items["input_index"].tolist() == np.repeat(np.arange(5), 4).tolist()
    assert emb.provenance["modules"] == ["blocks.0", "blocks.1", "blocks.2"]
    # a tensor-valued module (the Tanh) gives the same numbers as the tuple-valued block
    acts = extract_activations(model, batches(x), ["blocks.*.act"])
    assert np.array_equal(acts.layer(2), emb.layer(2))


def test_bare_tensor_inputs_and_vector_outputs(model):
    x = torch.randn(6, 3)   # (batch, features): outputs are (batch, dim), one row per input
    emb = extract_activations(model, [x[:4], x[4:]], ["blocks.1"])
    assert emb.shape == (1, 6, 4) and emb.ids.tolist() == [str(i) for i in range(6)]
    assert np.array_equal(emb.layer(0), by_hand(model, x)[1])


def test_masked_pooling_equals_the_masked_mean_by_hand(model):
    x = torch.randn(4, 5, 3)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 1, 0], [1, 0, 0, 0, 0]])
    h = by_hand(model, x)
    m = mask.numpy().astype(np.float32)
    mean = (h * m[None, :, :, None]).sum(2) / m.sum(1)[None, :, None]
    got = extract_activations(model, batches(x, mask), ["blocks.*"], pool="mean")
    assert got.shape == (3, 4, 4) and got.ids.tolist() == ["in0", "in1", "in2", "in3"]
    np.testing.assert_allclose(np.stack([got.layer(i) for i in range(3)]), mean,
                               rtol=1e-6, atol=1e-6)
    first = extract_activations(model, batches(x, mask), ["blocks.*"], pool="first")
    last = extract_activations(model, batches(x, mask), ["blocks.*"], pool="last")
    assert np.array_equal(first.layer(0), h[0, [0, 1, 2, 3], [0, 0, 2, 0]])
    assert np.array_equal(last.layer(0), h[0, [0, 1, 2, 3], [2, 4, 3, 0]])
    tokens = extract_activations(model, batches(x, mask), ["blocks.*"])
    assert tokens.n_items == int(mask.sum())
    # positions count real positions only: the left-padded input 2 starts at position 0
    rows = tokens.items["input_index"] == 2
    assert tokens.items["position"][rows].tolist() == [0, 1]
    assert np.array_equal(tokens.layer(1)[rows], h[1, 2, 2:4])


def test_per_position_columns_and_their_errors(model):
    x = torch.randn(2, 3, 3)
    words = np.array([["a", "b", "c"], ["d", "e", "f"]])
    emb = extract_activations(model, [({"x": x}, {"word": words})], ["blocks.0"])
    assert emb.items["word"].tolist() == list("abcdef")
    with pytest.raises(GeoprobeError, match="one value per position"):
        extract_activations(model, [({"x": x}, {"word": words})], ["blocks.0"], pool="mean")
    with pytest.raises(GeoprobeError, match="pool must be one of"):
        extract_activations(model, [{"x": x}], ["blocks.0"], pool="max")


def test_streaming_to_disk_equals_in_memory(model, tmp_path):
    x = torch.randn(7, 3, 3)
    mem = extract_activations(model, batches(x, size=3), ["blocks.*"])
    disk = extract_activations(model, batches(x, size=3), ["blocks.*"], out=tmp_path / "a.gpemb")
    assert isinstance(disk, EmbeddingSet) and disk.path == (tmp_path / "a.gpemb").resolve()
    reopened = EmbeddingSet.open(tmp_path / "a.gpemb")
    assert reopened.layer_names == mem.layer_names and np.array_equal(reopened.ids, mem.ids)
    for i in range(3):
        assert np.array_equal(reopened.layer(i), mem.layer(i))
    assert reopened.items["position"].tolist() == mem.items["position"].tolist()
    assert reopened.provenance["modules"] == mem.provenance["modules"]


def _no_hooks(model):
    return all(not m._forward_hooks for m in model.modules())


def test_hooks_removed_and_modes_restored_even_when_forward_raises(model, tmp_path):
    x = torch.randn(2, 3, 3)
    model.train()
    model.blocks[1].eval()   # a mixed model: each submodule gets its own mode back
    before = [m.training for m in model.modules()]
    extract_activations(model, [{"x": x}], ["blocks.*"])
    assert _no_hooks(model) and [m.training for m in model.modules()] == before
    model.fail = True
    with pytest.raises(RuntimeError, match="boom"):
        extract_activations(model, [{"x": x}], ["blocks.*"], out=tmp_path / "b.gpemb")
    assert _no_hooks(model) and [m.training for m in model.modules()] == before
    assert not (tmp_path / "b.gpemb").exists() and not list(tmp_path.iterdir())


def test_shapes_that_cannot_stack_and_modules_that_do_not_run(model):
    x = torch.randn(2, 3, 3)
    with pytest.raises(GeoprobeError, match=r"module 'head' outputs shape \(2, 3, 2\) but "
                                            r"'blocks.0' outputs \(2, 3, 4\)"):
        extract_activations(model, [{"x": x}], ["blocks.0", "head"])
    assert _no_hooks(model)
    with ModuleRecorder(model, ["blocks.0"]) as rec:
        with pytest.raises(GeoprobeError, match="'blocks.0' did not run"):
            rec.stacked()
    assert _no_hooks(model)


def test_module_called_twice_is_refused(model):
    shared = nn.Sequential()
    shared.add_module("act", nn.Tanh())
    shared.forward = lambda x: shared.act(shared.act(x))
    with pytest.raises(GeoprobeError, match="'act' ran more than once.*hook a module that"):
        extract_activations(shared, [torch.randn(2, 3)], ["act"])
    assert _no_hooks(shared)


class TinyConv(nn.Module):
    """(batch, 1, 5, 4) images -> conv feature maps (batch, 3, 5, 4) -> (batch, 2) logits."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, kernel_size=3, padding=1)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        return self.head(self.conv(x).mean((2, 3)))


def test_conv_feature_maps_pool_over_spatial_positions_or_flatten():
    torch.manual_seed(0)
    net, x = TinyConv(), torch.randn(4, 1, 5, 4)
    with torch.no_grad():
        maps = net.conv(x).numpy()                                   # (4, 3, 5, 4)
    pooled = extract_activations(net, [x[:3], x[3:]], ["conv"], pool="mean")
    np.testing.assert_allclose(pooled.layer(0), maps.mean((2, 3)), atol=1e-6)
    assert "spatial_outputs" in pooled.provenance
    rows = extract_activations(net, [x], ["conv"])                   # a row per spatial position
    assert rows.layer(0).shape == (4 * 5 * 4, 3)
    # row-major positions: position 6 of input 2 is (h=1, w=2)
    at = np.flatnonzero(rows.items["item_id"] == "2:6")[0]
    np.testing.assert_allclose(rows.layer(0)[at], maps[2, :, 1, 2], atol=1e-6)
    flat = extract_activations(net, [x], ["conv"], flatten=True)
    np.testing.assert_allclose(flat.layer(0), maps.reshape(4, -1), atol=1e-6)
    assert flat.provenance["flatten"] is True
    with pytest.raises(GeoprobeError, match="flatten needs inputs of one shape"):
        extract_activations(Tiny(), [{"x": torch.randn(2, 3, 3),
                                      "attention_mask": torch.ones(2, 3)}], ["blocks.0"],
                            flatten=True)
