"""torch, imported on first use: ``from engines.lazy import torch``.

Importing torch costs 0.8-1.2 s on a small CPU, more than a short clip's whole translation with
an ONNX model through OpenVINO, which needs no torch at all. The modules that such a run passes
through (the engine interface, the ONNX Runtime and OpenVINO engines, the measured choice, the
Translator, tiling and memory planning) name torch through this stand-in: the first attribute
read on it (a tensor, ``torch.device``, ``torch.nn``) imports the real library, after which the
stand-in serves its attributes directly. The host path (``Engine.host``) reads none, so such a
run never imports torch. It is an ordinary object, not a module in ``sys.modules``: every other
``import torch`` anywhere is the normal import.
"""

import importlib


class _Torch:
    def __getattr__(self, name: str):
        module = importlib.import_module("torch")
        self.__dict__.update(module.__dict__)  # later reads skip this method
        return getattr(module, name)

    def __repr__(self) -> str:
        return "<torch, imported on first use>"


torch = _Torch()
