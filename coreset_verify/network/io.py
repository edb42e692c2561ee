"""Models in files, without unpickling code: save_model, load_model."""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

from .._validation import check_int, fail, import_torch
from ..activations import get_activation
from ..errors import InvalidArgumentError
from ..nets.model import SUPPORTED, check_model, read_mlp, supported_classes

__all__ = ["load_model", "save_model"]


def save_model(model: Any, path: str | os.PathLike) -> None:
    """Save a supported ``nn.Sequential`` with ``torch.save`` (for :func:`load_model`).

    Parameters
    ----------
    model : torch.nn.Sequential
        Made only of the layers :func:`prune_network` reads, so that
        :func:`load_model` can read it back with ``weights_only=True``.
    path : str or os.PathLike
    """
    torch = import_torch()
    from torch.nn.utils import prune as tprune

    check_model(model, func="save_model")
    if not isinstance(path, str | os.PathLike):
        raise fail("save_model", "path", "a file path (str or os.PathLike)", type(path).__name__)
    if tprune.is_pruned(model):
        raise fail("save_model", "model", "a model without torch.nn.utils.prune masks "
                   "(call prune.remove on each pruned module first)", "a pruned model")
    try:
        torch.save(model, path)
    except (OSError, RuntimeError) as exc:
        raise fail("save_model", "path", "a writable file path", f"{os.fspath(path)!r} "
                   f"({type(exc).__name__}: {str(exc).strip()[:200]})") from None


def _architecture(arch: Any) -> tuple[list[int], str]:
    func = "load_model"
    expected = ("a list of layer sizes such as [784, 300, 100, 10], or "
                "{'sizes': [...], 'activation': 'relu'}")
    if isinstance(arch, Mapping):
        if "sizes" not in arch or not set(arch) <= {"sizes", "activation"}:
            raise fail(func, "architecture", expected, arch)
        sizes, activation = arch["sizes"], arch.get("activation", "relu")
    else:
        sizes, activation = arch, "relu"
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence) or len(sizes) < 2:
        raise fail(func, "architecture", expected, arch)
    sizes = [check_int(s, "architecture", func) for s in sizes]
    get_activation(activation)
    return sizes, activation


def _from_state_dict(state: Mapping[str, Any], architecture: Any) -> Any:
    torch = import_torch()
    from ..models import mlp

    if architecture is None:
        raise fail("load_model", "architecture", "the layer sizes (and activation) of the "
                   "MLP, needed to rebuild a model from a state_dict", None)
    from .masks import fold_masks  # torch.nn.utils.prune pairs X_orig, X_mask -> X

    state = fold_masks(state)
    sizes, activation = _architecture(architecture)
    model = mlp(sizes, activation=activation)
    tensors = [v for v in state.values() if isinstance(v, torch.Tensor)]
    if tensors and tensors[0].is_floating_point():
        model = model.to(tensors[0].dtype)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidArgumentError(
            f"load_model: the state_dict does not fit architecture={architecture!r}: "
            f"{str(exc).strip()}"
        ) from None
    read_mlp(model, func="load_model", name="the loaded model")  # dtypes, finite weights
    return model.eval()


def load_model(
    path_or_state_dict: str | os.PathLike | Mapping[str, Any],
    *,
    architecture: Sequence[int] | Mapping[str, Any] | None = None,
) -> Any:
    """Load a model without running code from the file.

    Always ``torch.load(..., weights_only=True)``: tensors, containers and
    exactly the ``torch.nn`` classes this toolkit reads (Sequential, Linear,
    ReLU, LeakyReLU, Sigmoid, Tanh, Softplus, ELU, Flatten, Dropout, Identity,
    and for convolutional models Unflatten, Conv2d, BatchNorm2d, MaxPool2d,
    AvgPool2d) are allow-listed; a file whose unpickling needs anything else
    (a custom class, a function call such as ``os.system``) is refused.

    A path ending in ``.onnx`` (any case) is read as an ONNX graph instead
    (:func:`~coreset_verify.network.onnx_io.read_onnx`: a linear chain of the
    supported ops, cross-checked against onnxruntime; ``pip install
    'coreset-verify[onnx]'``), and ``architecture`` must then be None.

    Parameters
    ----------
    path_or_state_dict : path or mapping
        A file written by :func:`save_model` (or ``torch.save`` of such an
        ``nn.Sequential``), a file holding a state_dict, or a state_dict.
    architecture : list of int or {"sizes": [...], "activation": str}, optional
        For a state_dict: the layer sizes of the MLP (:func:`~coreset_verify.models.mlp`
        layout, keys ``"0.weight"``, ``"0.bias"``, ``"2.weight"``, ...).

    Returns
    -------
    torch.nn.Sequential
        In eval mode, on the CPU.

    Raises
    ------
    InvalidArgumentError
        If the path is missing or a directory, the file is empty, truncated or
        not a torch file, needs unpickling of code, holds something else, the
        state_dict does not fit ``architecture``, or the model has weights the
        toolkit refuses (float16/bfloat16, NaN).
    """
    torch = import_torch()
    func = "load_model"
    if isinstance(path_or_state_dict, Mapping):
        return _from_state_dict(path_or_state_dict, architecture)
    if not isinstance(path_or_state_dict, str | os.PathLike):
        raise fail(func, "path_or_state_dict", "a path or a state_dict",
                   type(path_or_state_dict).__name__)
    path = os.fspath(path_or_state_dict)
    if not os.path.isfile(path):
        what = ("a directory" if os.path.isdir(path) else
                "not a regular file" if os.path.exists(path) else "a path that does not exist")
        raise fail(func, "path_or_state_dict", "an existing model file (or a state_dict)",
                   f"{path!r}, {what}")
    if os.path.splitext(path)[1].lower() == ".onnx":
        if architecture is not None:
            raise fail(func, "architecture", "None for an ONNX file", architecture)
        from .onnx_io import read_onnx

        return read_onnx(path)
    try:
        with torch.serialization.safe_globals(supported_classes()):
            obj = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[-1][:300]
        raise InvalidArgumentError(
            f"load_model refused {os.fspath(path_or_state_dict)!r}: it needs unpickling of "
            f"objects other than tensors and the supported torch.nn layers ({SUPPORTED}), "
            f"which could run code. Save the model with save_model, or save its "
            f"state_dict and pass architecture=. ({first})"
        ) from None
    except Exception as exc:  # a hostile file reaches torch's unpickler in many ways
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InvalidArgumentError(
            f"load_model could not read {path!r} as a torch file: it is empty, truncated or "
            f"not written by torch.save ({type(exc).__name__}: {first}). Save the model "
            "with save_model."
        ) from None
    if isinstance(obj, Mapping):
        return _from_state_dict(obj, architecture)
    if isinstance(obj, torch.nn.Sequential):
        if architecture is not None:
            raise fail(func, "architecture", "None for a file holding a whole nn.Sequential",
                       architecture)
        from .masks import fold_masks  # a model pruned with torch.nn.utils.prune

        obj = fold_masks(obj)
        check_model(obj, func=func, name="the loaded model")
        return obj.eval()
    raise fail(func, "path_or_state_dict", "a file holding an nn.Sequential or a state_dict",
               f"a file holding {type(obj).__name__}")
