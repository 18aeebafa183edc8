"""torch imported on first use, not at ``import streamgan``.

Importing torch costs 0.8-1.2 s on a small CPU, more than a short clip's whole translation with
an ONNX model through OpenVINO, which needs no torch at all. ``lazy_torch()`` puts a stand-in
module named ``torch`` in ``sys.modules`` unless torch is already imported: every
``import torch`` then binds the stand-in at no cost, and the first attribute looked up on it (a
tensor, ``torch.device``, ``from torch import nn``, a submodule import) imports the real library,
which then takes its own place in ``sys.modules``; the stand-in forwards to it from then on. The
ONNX/OpenVINO whole-frame path (``Engine.host``) looks nothing up, so such a run never loads it.
(``importlib.util.LazyLoader`` cannot do this: the import statement itself reads the module's
``__spec__``, which loads a LazyLoader module at once.)
"""

import importlib
import importlib.machinery
import sys
import types


class _Torch(types.ModuleType):
    def __getattr__(self, name: str):
        real = sys.modules.get("torch")
        if real is self or real is None:
            del sys.modules["torch"]
            real = importlib.import_module("torch")
        self.__dict__.update({k: v for k, v in real.__dict__.items() if k not in ("__spec__", "__name__")})
        return getattr(real, name)


def lazy_torch() -> None:
    if "torch" in sys.modules or importlib.util.find_spec("torch") is None:
        return
    stand_in = _Torch("torch")
    stand_in.__spec__ = importlib.machinery.ModuleSpec("torch", None)  # not initialising: imports bind it
    sys.modules["torch"] = stand_in


def torch_loaded() -> bool:
    """Whether the real torch library has been loaded in this process."""
    return "torch._C" in sys.modules
