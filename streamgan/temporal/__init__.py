"""Temporal smoothing of translated frames (ema, motion-gated ema, flow-guided, on the CPU or with
torch on the engine's GPU) and its measure, the warping error.

``make_smoother`` (here) picks a smoother: ``smooth`` holds them, ``smooth_torch`` the flow
smoother's GPU variant (it builds on ``smooth``; neither imports this package's other modules or
the other's back, and ``smooth_torch`` loads only when a CUDA device is given); ``evaluate`` reads
videos through ``media``. Imports ``errors``, ``options`` and ``media`` of streamgan only.
"""

from ..errors import OptionError
from .smooth import SMOOTHERS, TEMPORAL_MODES, Smoother


def make_smoother(mode: str, strength: float | None = None, device=None) -> Smoother | None:
    """The smoother for ``--temporal MODE`` (None for off); strength None: the mode's default.
    With a CUDA ``device`` the flow smoother's per-pixel work runs there (the flow stays on the host)."""
    if mode not in TEMPORAL_MODES:
        raise OptionError(f"--temporal must be one of {', '.join(TEMPORAL_MODES)}")
    if mode == "off":
        return None
    if mode == "flow" and device is not None and str(device).startswith("cuda"):
        from .smooth_torch import TorchFlowSmoother
        return TorchFlowSmoother(strength, device=device)
    return SMOOTHERS[mode](strength)
