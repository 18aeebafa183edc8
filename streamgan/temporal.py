"""Temporal smoothing of per-frame generator output: ema, motion-gated ema, flow-guided blend.

Each smoother is called with (input frame, fresh output) and returns (smoothed output, cut), where
``cut`` says a scene cut was detected (state reset, fresh output passed through). The first
frame always passes through.
"""

import cv2
import numpy as np

from .errors import OptionError

TEMPORAL_MODES = ("off", "ema", "motion", "flow")
CUT_THRESHOLD = 0.12  # mean |I_t - I_t-1| on [0, 1] gray at 1/4 resolution


def _gray(rgb: np.ndarray, scale: float) -> np.ndarray:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale != 1.0:
        g = cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return g


def is_cut(prev_rgb: np.ndarray, rgb: np.ndarray) -> bool:
    a = _gray(prev_rgb, 0.25).astype(np.float32)
    b = _gray(rgb, 0.25).astype(np.float32)
    return float(np.abs(a - b).mean()) / 255.0 > CUT_THRESHOLD


class Smoother:
    """Shared state: previous input/output; subclasses implement ``blend``."""

    def __init__(self, strength: float):
        if not 0.0 <= strength < 1.0:
            raise OptionError("--temporal-strength must be in [0, 1)")
        self.strength = strength
        self.prev_in: np.ndarray | None = None
        self.prev_out: np.ndarray | None = None
        self.cuts = 0

    def reset(self) -> None:
        self.prev_in = self.prev_out = None

    def __call__(self, rgb: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, bool]:
        cut = False
        if self.prev_in is None or self.prev_in.shape != rgb.shape:
            result = out
        elif is_cut(self.prev_in, rgb):
            self.cuts += 1
            cut, result = True, out
        else:
            result = self.blend(rgb, out)
        self.prev_in, self.prev_out = rgb, result
        return result, cut

    def blend(self, rgb: np.ndarray, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _mix(prev: np.ndarray, fresh: np.ndarray, w_prev: np.ndarray | float) -> np.ndarray:
    if isinstance(w_prev, np.ndarray):
        w_prev = w_prev[..., None]
    r = fresh.astype(np.float32) + w_prev * (prev.astype(np.float32) - fresh.astype(np.float32))
    return np.clip(r + 0.5, 0, 255).astype(np.uint8)


class EmaSmoother(Smoother):
    """O_t = (1 - s) P_t + s O_t-1: free, ghosts on motion."""

    def blend(self, rgb, out):
        return _mix(self.prev_out, out, self.strength)


class MotionSmoother(Smoother):
    """Per-pixel weight s * exp(-50 |I_t - I_t-1|^2) on blurred inputs: no flow, no ghosting,
    no smoothing where things move."""

    k = 50.0

    def blend(self, rgb, out):
        d = (cv2.GaussianBlur(rgb, (5, 5), 0).astype(np.float32)
             - cv2.GaussianBlur(self.prev_in, (5, 5), 0).astype(np.float32)) / 255.0
        w = self.strength * np.exp(-self.k * (d * d).mean(axis=2))
        return _mix(self.prev_out, out, w)


def dis_flow(a: np.ndarray, b: np.ndarray, preset: int = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST) -> np.ndarray:
    """Dense flow F with a(x) ~ b(x + F(x)), for uint8 gray images."""
    return cv2.DISOpticalFlow_create(preset).calc(a, b, None)


def remap(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """img sampled at x + flow(x) (bilinear, border replicated)."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def fb_consistent(fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Ruder et al.: x is consistent if |F_fw(x) + F_bw(x + F_fw(x))|^2 <= 0.01(|F_fw|^2 + |F_bw~|^2) + 0.5."""
    bw_w = remap(bw, fw)
    s = fw + bw_w
    lhs = (s * s).sum(-1)
    rhs = 0.01 * ((fw * fw).sum(-1) + (bw_w * bw_w).sum(-1)) + 0.5
    return lhs <= rhs


class FlowSmoother(Smoother):
    """Warp O_t-1 to frame t with DIS flow of the inputs (at ``scale`` resolution), blend where
    the flow is trusted (forward-backward check, small input warp residual), else keep P_t."""

    def __init__(self, strength: float, scale: float = 0.5, residual_k: float = 30.0):
        super().__init__(strength)
        self.scale, self.residual_k = scale, residual_k
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)

    def blend(self, rgb, out):
        h, w = rgb.shape[:2]
        a, b = _gray(rgb, self.scale), _gray(self.prev_in, self.scale)
        bw = self.dis.calc(a, b, None)  # t -> t-1
        fw = self.dis.calc(b, a, None)  # t-1 -> t
        ok = fb_consistent(bw, fw).astype(np.float32)
        s = w / a.shape[1]
        if a.shape[:2] != (h, w):
            bw = cv2.resize(bw, (w, h), interpolation=cv2.INTER_LINEAR) * s
            ok = cv2.resize(ok, (w, h), interpolation=cv2.INTER_LINEAR)
        warped_in = remap(self.prev_in, bw)
        res = (warped_in.astype(np.float32) - rgb.astype(np.float32)) / 255.0
        conf = ok * np.exp(-self.residual_k * (res * res).mean(axis=2) * 10)
        return _mix(remap(self.prev_out, bw), out, self.strength * conf)


SMOOTHERS = {"ema": EmaSmoother, "motion": MotionSmoother, "flow": FlowSmoother}


def make_smoother(mode: str, strength: float = 0.6, device=None) -> Smoother | None:
    """The smoother for ``--temporal MODE`` (None for off)."""
    if mode not in TEMPORAL_MODES:
        raise OptionError(f"--temporal must be one of {', '.join(TEMPORAL_MODES)}")
    return None if mode == "off" else SMOOTHERS[mode](strength)
