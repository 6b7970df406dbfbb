"""Image folders through any torch model: rows equal the conv net run by hand, labels from
class subfolders, factory and transform references, the factory twin and its refusal,
unreadable images named, a Hugging Face vision model directory."""

import textwrap

import numpy as np
import pytest
import torch

from geoprobe import EmbeddingSet
from geoprobe.cli import main as cli_main
from geoprobe.datasets.images import extract_images, list_images, to_tensor
from geoprobe.errors import FormatError, GeoprobeError
from geoprobe.plugins import load_reference
from geoprobe.source import twin_path

FACTORY = '''
import numpy as np
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((2, 3)))


class Scaled(Net):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.full((4,), 0.1))   # no reset_parameters: stays 0.1


def net():
    return Net()


def scaled():
    return Scaled()


def crop(image):
    """The top-left 4 x 4 pixels, values halved."""
    t = torch.from_numpy(np.asarray(image, dtype=np.float32) / 510).permute(2, 0, 1)
    return t[:, :4, :4].contiguous()
'''


@pytest.fixture
def factory(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "gp_test_nets.py").write_text(textwrap.dedent(FACTORY))
    monkeypatch.syspath_prepend(str(pkg))
    return "gp_test_nets"


@pytest.fixture
def folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    (root / ".hidden.png").write_bytes(b"not read")   # hidden files are skipped
    return root


def _by_hand(net, folder, transform):
    from PIL import Image

    files, _ = list_images(folder)
    x = torch.stack([transform(Image.open(f).convert("RGB")) for f in files])
    with torch.no_grad():
        return net.conv(x).numpy()


def test_rows_are_the_pooled_feature_maps_with_labels_and_a_twin(folder, factory, tmp_path):
    out = tmp_path / "conv.gpemb"
    torch.manual_seed(0)
    extract_images(folder, out, model=f"{factory}:net", modules=["conv"], batch_size=4,
                   show_progress=False)
    emb = EmbeddingSet.open(out)
    assert list(emb.items["item_id"]) == [f"{c}/{i}.png" for c in ("cat", "dog")
                                          for i in range(3)]
    assert list(emb.items["label"]) == ["cat"] * 3 + ["dog"] * 3
    torch.manual_seed(0)
    real = load_reference(f"{factory}:net", "model")()
    np.testing.assert_allclose(emb.layer(0), _by_hand(real, folder, to_tensor).mean((2, 3)),
                               atol=1e-5)
    twin = EmbeddingSet.open(twin_path(emb))
    assert twin.provenance["random_init"] and twin.provenance["seed"] == 0
    assert twin.layer(0).shape == emb.layer(0).shape
    assert not np.allclose(twin.layer(0), emb.layer(0))
    # the twin depends on the seed only, not on the caller's torch state
    torch.manual_seed(0)
    extract_images(folder, tmp_path / "again.gpemb", model=f"{factory}:net", modules=["conv"],
                   show_progress=False)
    np.testing.assert_array_equal(
        EmbeddingSet.open(tmp_path / "again.random-init.gpemb").layer(0), twin.layer(0))


def test_cli_transform_positions_and_flatten(folder, factory, tmp_path, capsys):
    out = tmp_path / "pos.gpemb"
    args = ["extract", "--images", str(folder), "--model", f"{factory}:net", "--modules",
            "conv", "--transform", f"{factory}:crop", "--no-twin"]
    assert cli_main([*args, "--pool", "none", "--out", str(out)]) == 0
    assert "from 6 images" in capsys.readouterr().out
    emb = EmbeddingSet.open(out)
    assert emb.n_items == 6 * 16 and emb.dim == 4        # a row per position of a 4 x 4 map
    net = emb.provenance["model_factory"]
    assert net == f"{factory}:net" and emb.provenance["transform"] == f"{factory}:crop"
    assert cli_main([*args, "--flatten", "--out", str(tmp_path / "flat.gpemb")]) == 0
    assert EmbeddingSet.open(tmp_path / "flat.gpemb").dim == 4 * 16
    assert cli_main(["extract", "--split", "dev", "--flatten", "--out", str(out)]) == 2
    assert "--flatten go with --images" in capsys.readouterr().err


def test_unreadable_image_and_bad_references_are_one_line_errors(folder, factory, tmp_path,
                                                                 capsys):
    (folder / "dog" / "broken.png").write_bytes(b"\x89PNG truncated")
    assert cli_main(["extract", "--images", str(folder), "--model", f"{factory}:net",
                     "--modules", "conv", "--out", str(tmp_path / "x.gpemb")]) == 2
    err = capsys.readouterr().err.strip()
    assert "broken.png: cannot read as an image" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.gpemb").exists() and not (tmp_path / "x.random-init.gpemb").exists()
    with pytest.raises(GeoprobeError, match="not of the form package.module:function"):
        load_reference("../evil.py", "transform")
    with pytest.raises(GeoprobeError, match=r"'gp_no_such_module:f' failed to load: "
                                            "ModuleNotFoundError"):
        load_reference("gp_no_such_module:f", "model factory")
    with pytest.raises(FormatError, match="no image files"):
        list_images(tmp_path / "pkg")


def test_factory_twin_refuses_weights_it_cannot_reinitialise(folder, factory, tmp_path):
    with pytest.raises(GeoprobeError, match="parameter.*scale keep the real model's values"):
        extract_images(folder, tmp_path / "s.gpemb", model=f"{factory}:scaled",
                       modules=["conv"], show_progress=False)
    assert not list(tmp_path.glob("s*.gpemb"))
    with pytest.raises(GeoprobeError, match="scale keep"):   # also when the real model is
        extract_images(folder, tmp_path / "s.gpemb", model=f"{factory}:scaled",  # bfloat16
                       modules=["conv"], precision="bfloat16", show_progress=False)
    extract_images(folder, tmp_path / "s.gpemb", model=f"{factory}:scaled", modules=["conv"],
                   twin=False, show_progress=False)
    assert "label" in EmbeddingSet.open(tmp_path / "s.gpemb").items


def test_hugging_face_vision_model_directory(folder, tmp_path):
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(image_size=4, patch_size=2, num_channels=3, hidden_size=8,
                       num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    torch.manual_seed(0)
    ViTModel(config).save_pretrained(tmp_path / "vit")
    out = tmp_path / "vit.gpemb"
    extract_images(folder, out, model=tmp_path / "vit", modules=["layers.*"],
                   transform=lambda im: to_tensor(im)[:, :4, :4], pool="first", twin=False,
                   show_progress=False)
    emb = EmbeddingSet.open(out)
    model = ViTModel.from_pretrained(tmp_path / "vit").eval()
    files, _ = list_images(folder)
    from PIL import Image
    x = torch.stack([to_tensor(Image.open(f).convert("RGB"))[:, :4, :4] for f in files])
    with torch.no_grad():
        cls = model(x, output_hidden_states=True).hidden_states[1][:, 0].numpy()
    np.testing.assert_allclose(emb.layer(0), cls, atol=1e-5)       # first position = [CLS]
    assert emb.provenance["model_type"] == "vit" and "tokenizer" not in emb.provenance
