"""Image folders through any torch vision model's hooked modules: one row per image.

The folder is read recursively; every file with an image suffix (:data:`IMAGE_SUFFIXES`, hidden
files skipped) is one input, in sorted relative-path order. Each image is opened with Pillow,
converted to RGB and turned into a tensor of shape (channels, height, width) by a transform:
the default :func:`to_tensor` (values in [0, 1]; every image must then have one size), or
the user's ``"package.module:function"`` (e.g. resizing and normalising as the model was
trained). The batches go through :func:`geoprobe.extract_activations`, so the rows hold the
matched modules' outputs; convolution feature maps (batch, channels, H, W) are pooled over
their spatial positions with ``pool`` (default ``"mean"``: global average pooling, one row
per image) or flattened (``flatten=True``).

Item columns: ``item_id`` and ``path``, the image's path relative to the folder (POSIX
separators), and ``label``, the name of its top-level subfolder, when every image lies in a
subfolder (the class-per-folder layout of torchvision's ``ImageFolder``); ``input_index``.

The model is a Hugging Face model directory (through :mod:`geoprobe.hf`; the image tensor is
its first argument, ``pixel_values``) or a factory ``"package.module:function"`` called with
no arguments (:func:`geoprobe.plugins.load_reference`: importing it runs that user code, by
design). The random-init twin is ``from_config`` for a directory, and for a factory the model
it builds again under the seed with every ``reset_parameters`` applied
(:func:`geoprobe.reinit.factory_twin`), refused when some weight would stay the real one's.

Pillow is an optional dependency (``pip install geoprobe[images]``), imported with torch only
when images are read.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from geoprobe import hf
from geoprobe.activations import extract_activations, model_device
from geoprobe.device import resolve_device, resolve_dtype
from geoprobe.errors import FormatError, GeoprobeError, first_line
from geoprobe.plugins import is_reference, load_reference
from geoprobe.reinit import factory_twin
from geoprobe.source import twin_path_for

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def list_images(folder) -> tuple[list[Path], dict]:
    """The image files under ``folder`` and their item columns.

    Returns
    -------
    files : list of Path, sorted by relative path
    items : dict with ``item_id`` and ``path`` (relative POSIX paths) and, when every image
        lies in a subfolder, ``label`` (the top-level subfolder); arrays of shape (n_images,)
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise GeoprobeError(f"{folder}: not a folder of images")
    files = sorted((p for p in folder.rglob("*") if p.is_file()
                    and p.suffix.lower() in IMAGE_SUFFIXES
                    and not any(part.startswith(".") for part in p.relative_to(folder).parts)),
                   key=lambda p: p.relative_to(folder).as_posix())
    if not files:
        raise FormatError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    rel = [p.relative_to(folder) for p in files]
    items = {"item_id": np.array([r.as_posix() for r in rel]),
             "path": np.array([r.as_posix() for r in rel])}
    if all(len(r.parts) > 1 for r in rel):
        items["label"] = np.array([r.parts[0] for r in rel])
    return files, items


def read_image(path):
    """The image at ``path`` as an RGB ``PIL.Image``; an unreadable file is one FormatError
    naming it."""
    try:
        from PIL import Image
    except ImportError:
        raise GeoprobeError("reading images needs Pillow: pip install 'geoprobe[images]'") from None
    try:
        with Image.open(path) as img:
            return img.convert("RGB")  # convert() loads the pixels: truncated files fail here
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise FormatError(f"{path}: cannot read as an image ({first_line(exc)})") from None


def to_tensor(image):
    """The default transform: an RGB ``PIL.Image`` as a float32 tensor of shape
    (3, height, width) with values in [0, 1]."""
    import torch

    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def image_batches(files: Sequence[Path], items: dict, *, transform: Callable = to_tensor,
                  batch_size: int = 32, dtype="float32") -> Iterator:
    """Yield ``(images, items)`` per batch: a tensor of shape (batch, channels, height, width)
    in the compute ``dtype`` and the batch's item columns of shape (batch,)."""
    import torch

    if batch_size < 1:
        raise GeoprobeError(f"batch_size must be at least 1, got {batch_size}")
    dtype = resolve_dtype(dtype)
    for start in range(0, len(files), batch_size):
        tensors = []
        for path in files[start:start + batch_size]:
            x = transform(read_image(path))
            if not isinstance(x, torch.Tensor) or x.ndim != 3:
                raise GeoprobeError(f"{path}: the transform returned "
                                    f"{getattr(x, 'shape', type(x).__name__)}; expected a "
                                    "tensor of shape (channels, height, width)")
            if tensors and x.shape != tensors[0].shape:
                raise GeoprobeError(f"{path}: the transform gave shape {tuple(x.shape)} but "
                                    f"{files[start]} gave {tuple(tensors[0].shape)}; images in "
                                    "a batch need one size (resize them in the transform)")
            tensors.append(x)
        yield (torch.stack(tensors).to(dtype),
               {k: v[start:start + batch_size] for k, v in items.items()})


def load_vision_model(model, *, random_init: bool = False, seed: int = 0, device="cpu",
                      precision="float32", real=None):
    """A model from a Hugging Face model directory or a factory ``"package.module:function"``,
    in eval mode on ``device`` in ``precision``; with ``random_init``, its twin (a factory's
    twin needs ``real``, the model it is the twin of).

    Returns
    -------
    (module, provenance dict)
    """
    if model is None:
        raise GeoprobeError("images need a model: a Hugging Face model directory or a factory "
                            "package.module:function")
    device, dtype = resolve_device(device), resolve_dtype(precision)
    if Path(str(model)).is_dir() or not is_reference(str(model)):
        path = hf.model_dir(model)
        net = hf.load_model(path, random_init=random_init, seed=seed, device=device,
                            dtype=precision)
        return net, hf.model_provenance(path, net.config, None, random_init=random_init,
                                        seed=seed)
    factory = load_reference(str(model), "model factory")
    net = factory_twin(factory, real, seed) if random_init else factory()
    if not hasattr(net, "named_modules"):
        raise GeoprobeError(f"model factory {model!r} returned {type(net).__name__}, not a "
                            "torch.nn.Module")
    prov = {"model": str(model), "model_factory": str(model), "random_init": random_init}
    if random_init:
        prov.update(seed=seed, init="factory under torch.manual_seed(seed), then every "
                                    "submodule's reset_parameters()")
    return net.to(device=device, dtype=dtype).eval(), prov


def extract_images(folder, out, *, model, modules: Sequence[str], transform=None,
                   pool: str = "mean", flatten: bool = False, batch_size: int = 32,
                   dtype="float32", twin: bool = True, seed: int = 0, device="cpu",
                   precision="float32", provenance: dict | None = None,
                   show_progress: bool = True) -> Path:
    """Extract the hooked modules' outputs for every image under ``folder``, and (by
    default) the random-init twin.

    Parameters
    ----------
    folder : path of the image folder (see the module docstring)
    out : path of the set to write; the twin goes beside it as ``NAME.random-init.gpemb``
    model : Hugging Face model directory, or factory ``"package.module:function"``
    modules : module name patterns (see :mod:`geoprobe.hooks`), e.g. ``["layer*"]``
    transform : ``"package.module:function"`` or a callable, PIL image -> tensor of shape
        (channels, height, width); default :func:`to_tensor`
    pool, flatten : how outputs of shape (batch, positions, dim) or (batch, channels,
        *spatial) become rows (see :func:`geoprobe.extract_activations`); ``"mean"`` gives
        one row per image
    batch_size : images per forward pass
    dtype : "float32" or "float16" storage
    twin, seed : also write the random-init twin, initialised under ``torch.manual_seed(seed)``
    device, precision : where and in what compute dtype the model runs
    provenance : extra provenance entries for both sets

    Returns
    -------
    Path of the real set; its layers have shape (n_rows, dim), one per matched module.
    """
    files, items = list_images(folder)
    name = transform if isinstance(transform, str) else getattr(
        transform, "__qualname__", "geoprobe.datasets.images:to_tensor")
    fn = load_reference(transform, "transform") if isinstance(transform, str) else (
        transform or to_tensor)
    # the real model loads first: unloadable weights stop the run before anything is written
    real, real_prov = load_vision_model(model, device=device, precision=precision)
    base = {"source": str(Path(folder).resolve()), "n_images": len(files), "transform": name,
            **(provenance or {})}
    if (device, precision) != ("cpu", "float32"):
        base.update(device=str(model_device(real)), precision=precision)
    out = Path(out)

    def run(net, prov, target):
        extract_activations(net, image_batches(files, items, transform=fn,
                                               batch_size=batch_size, dtype=precision),
                            modules, out=target, pool=pool, dtype=dtype, flatten=flatten,
                            provenance={**prov, **base}, show_progress=show_progress)

    extra = {}
    if twin:
        tpath = twin_path_for(out)
        net, prov = load_vision_model(model, random_init=True, seed=seed, device=device,
                                      precision=precision, real=real)
        run(net, prov, tpath)
        extra = {"twin": tpath.name, "twin_seed": seed}  # relative: resolved beside the set
    try:
        run(real, {**real_prov, **extra}, out)
    except BaseException:
        if twin:  # never a twin without its real set
            shutil.rmtree(tpath, ignore_errors=True)
        raise
    return out
