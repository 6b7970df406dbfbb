"""Where torch work runs and in what precision: device and dtype names, and the way back.

Every option that puts torch work on an accelerator (``--device`` of ``geoprobe extract``
and ``geoprobe jepa train``, the ``device`` parameter of the probes that train with torch)
goes through :func:`resolve_device`; every compute precision option through
:func:`resolve_dtype`. Results come back through :func:`to_numpy`, never a bare
``.numpy()``, which fails on a GPU tensor and on bfloat16.

The default everywhere is ``"cpu"``, not ``"auto"``: a GPU gives slightly different numbers
(other kernels, reduction orders, TF32), so ``"auto"`` would change a result merely because
the machine it ran on has a GPU. Asking for ``"auto"`` or a device is a choice the user
makes and sees in the provenance.

MPS has no float64: geoprobe creates no float64 tensor on a device. Device work is float32
(or the asked precision) and is upcast after :func:`to_numpy`, in numpy (e.g. the MLP
decoder's predictions).

torch is imported only when a name is resolved.
"""

from __future__ import annotations

from .contract import Check
from .errors import GeoprobeError

#: the accepted device names besides ``"cuda:N"``
DEVICES = ("cpu", "cuda", "mps", "auto")
#: compute precisions by name
DTYPES = ("float32", "float16", "bfloat16")


def _is_device_name(value) -> bool:
    if not isinstance(value, str):
        return False
    kind, _, index = value.partition(":")
    return value in DEVICES or (kind == "cuda" and index.isdigit())


#: parameter constraint of a probe's ``device`` (see docs/writing-probes.md)
DEVICE_CONSTRAINT = Check(_is_device_name, "'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'")


def available_devices() -> list[str]:
    """The device names usable on this machine, e.g. ``["cpu", "cuda:0"]``."""
    import torch

    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available(torch):
        names.append("mps")
    return names


def _mps_available(torch) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name="cpu"):
    """The ``torch.device`` that ``name`` asks for, checked to exist on this machine.

    Parameters
    ----------
    name : "cpu", "cuda", "cuda:N", "mps", "auto", or a torch.device
        ``"auto"``: the first CUDA device if there is one, else MPS if available, else CPU.

    Raises
    ------
    GeoprobeError
        One line naming the unavailable device and the devices this machine has.
    """
    import torch

    if isinstance(name, torch.device):
        name = str(name)
    if not _is_device_name(name):
        raise GeoprobeError(f"device {name!r} is not one of 'cpu', 'cuda', 'cuda:N', 'mps', "
                            "'auto'")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available(torch) else "cpu")
    kind, _, index = name.partition(":")
    if kind == "cuda" and not (torch.cuda.is_available()
                               and int(index or 0) < torch.cuda.device_count()):
        why = "CUDA is not available" if not torch.cuda.is_available() else (
            f"there are {torch.cuda.device_count()} CUDA devices")
        raise GeoprobeError(f"device {name!r} is not available on this machine ({why}); "
                            f"available: {', '.join(available_devices())}")
    if kind == "mps" and not _mps_available(torch):
        raise GeoprobeError(f"device 'mps' is not available on this machine; available: "
                            f"{', '.join(available_devices())}")
    return torch.device(name)


def resolve_dtype(name="float32"):
    """The torch dtype of a compute precision name: "float32", "float16" or "bfloat16"."""
    import torch

    if name not in DTYPES:
        raise GeoprobeError(f"precision {name!r} is not one of {', '.join(DTYPES)}")
    return getattr(torch, name)


def to_numpy(tensor):
    """A tensor as a numpy array: detached, on the CPU, half types (float16, bfloat16)
    upcast to float32 (numpy has no bfloat16, and float16 arithmetic in numpy is slow and
    lossy); other dtypes unchanged, so a CPU float32 tensor gives the same numbers as
    ``tensor.numpy()``."""
    import torch

    tensor = tensor.detach()
    if tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.float()
    return tensor.cpu().numpy()
