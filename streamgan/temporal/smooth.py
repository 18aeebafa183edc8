"""Temporal smoothing of per-frame generator output: ema, motion-gated ema, flow-guided blend.

Each smoother is called with (input frame, fresh output) and returns (smoothed output, cut), where
``cut`` says a scene cut was detected (state reset, fresh output passed through). The first
frame always passes through.
"""

import functools
import threading

import cv2
import numpy as np

from ..errors import OptionError

TEMPORAL_MODES = ("off", "ema", "motion", "flow")
CUT_THRESHOLD = 0.12  # mean |I_t - I_t-1| on [0, 1] gray at 1/4 resolution


def _gray(rgb: np.ndarray, scale: float) -> np.ndarray:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale != 1.0:
        g = cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return g


def _after_global_shift(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |a - b| (0..255) where the two overlap once b is moved back by the translation
    between them (phase correlation); inf when they hardly overlap."""
    h, w = a.shape
    (dx, dy), _ = cv2.phaseCorrelate(a, b, cv2.createHanningWindow((w, h), cv2.CV_32F))  # b(x) ~ a(x - d)
    mx, my = int(np.ceil(abs(dx))) + 1, int(np.ceil(abs(dy))) + 1
    if 2 * mx >= w or 2 * my >= h:
        return float("inf")
    back = cv2.warpAffine(b, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)  # back(x) = b(x + d)
    return float(cv2.absdiff(a, back)[my:h - my, mx:w - mx].mean())


def is_cut(prev_rgb: np.ndarray, rgb: np.ndarray) -> bool:
    """A hard cut: the frames differ by more than CUT_THRESHOLD on average (gray, 1/4 resolution),
    also after undoing the camera's pan between them (a pan over fine texture - foliage, gravel,
    crowds - changes every pixel as much as a cut does; measured on real photographs, a 19 px a
    frame pan at 720p read as a cut 16 frames in 23 without this). Undone, a pan leaves < 0.04 on
    the benchmark's photo pans; frames of two shots still differ by > 0.15 (real photographs) or
    ~0.09 (two random textures of the same statistics, where a spurious shift's interpolation
    lowers the difference): a cut is a difference that stays above CUT_THRESHOLD / 2."""
    a = _gray(prev_rgb, 0.25).astype(np.float32)
    b = _gray(rgb, 0.25).astype(np.float32)
    limit = CUT_THRESHOLD * 255.0
    return float(cv2.absdiff(a, b).mean()) > limit and _after_global_shift(a, b) > limit / 2


class Smoother:
    """Shared state: previous input/output; subclasses implement ``blend``.

    ``prev_exact`` is the previous result before rounding to uint8, for smoothers whose recursion
    should not accumulate rounding (None after a pass-through)."""

    default_strength = 0.6

    def __init__(self, strength: float | None = None):
        strength = self.default_strength if strength is None else strength
        if not 0.0 <= strength < 1.0:
            raise OptionError("--temporal-strength must be in [0, 1)")
        self.strength = strength
        self.prev_in: np.ndarray | None = None
        self.prev_out: np.ndarray | None = None
        self.prev_exact: np.ndarray | None = None
        self.cuts = 0

    def reset(self) -> None:
        self.prev_in = self.prev_out = self.prev_exact = None

    def __call__(self, rgb: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, bool]:
        cut = False
        if self.prev_in is None or self.prev_in.shape != rgb.shape:
            result, self.prev_exact = out, None
        elif is_cut(self.prev_in, rgb):
            self.cuts += 1
            cut, result, self.prev_exact = True, out, None
        else:
            result = self.blend(rgb, out)
        self.prev_in, self.prev_out = rgb, result
        return result, cut

    def blend(self, rgb: np.ndarray, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def ahead(self, rgb: np.ndarray) -> None:
        """``rgb`` is the next input frame to come to ``__call__`` after those announced before:
        a smoother whose per-frame work depends on the inputs alone starts it now, beside the
        model (the flow smoother's optical flow)."""


def _mix(prev: np.ndarray, fresh: np.ndarray, w_prev: np.ndarray | float) -> np.ndarray:
    """fresh + w_prev (prev - fresh), rounded; w_prev a number or an (H, W) map (OpenCV arithmetic)."""
    if not isinstance(w_prev, np.ndarray):
        return cv2.addWeighted(prev, float(w_prev), fresh, 1.0 - float(w_prev), 0.0)
    f = fresh.astype(np.float32)
    r = cv2.add(f, cv2.multiply(cv2.merge([w_prev.astype(np.float32)] * 3), cv2.subtract(prev.astype(np.float32), f)))
    return (np.clip(r, 0, 255, out=r) + 0.5).astype(np.uint8)


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


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int) -> np.ndarray:
    """(H, W, 2) float32 pixel coordinates (x, y), read-only: built once per frame size."""
    g = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=-1)
    g.flags.writeable = False
    return g


def remap(img: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """img sampled at x + flow(x) (border replicated)."""
    h, w = flow.shape[:2]
    return cv2.remap(img, cv2.add(_grid(h, w), flow.astype(np.float32, copy=False)), None, interpolation,
                     borderMode=cv2.BORDER_REPLICATE)


_PAIR_SUM = np.ones((1, 2), np.float32)  # cv2.transform: a 2-channel image -> the sum of its channels


def _squared_norm(v: np.ndarray) -> np.ndarray:
    """|v|^2 per pixel of an (H, W, 2) field (OpenCV: numpy's sum over a last axis of 2 is ~5x slower)."""
    return cv2.transform(cv2.multiply(v, v), _PAIR_SUM)


def fb_consistent(fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Ruder et al.: x is consistent if |F_fw(x) + F_bw(x + F_fw(x))|^2 <= 0.01(|F_fw|^2 + |F_bw~|^2) + 0.5."""
    bw_w = remap(bw, fw)
    rhs = cv2.add(_squared_norm(fw), _squared_norm(bw_w))
    return _squared_norm(cv2.add(fw, bw_w)) <= rhs * 0.01 + 0.5


def _half(x: np.ndarray) -> np.ndarray:
    return cv2.resize(x, ((x.shape[1] + 1) // 2, (x.shape[0] + 1) // 2), interpolation=cv2.INTER_AREA)


def _full(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    return cv2.resize(x, (like.shape[1], like.shape[0]), interpolation=cv2.INTER_LINEAR)


def _bands(x: np.ndarray, sigmas: tuple[float, ...]) -> list[np.ndarray]:
    """Detail bands fine -> coarse (differences of Gaussian levels), then the base; they sum to x.
    Levels with sigma >= 2 are blurred at half resolution (4x fewer pixels, same passband)."""
    levels = [x]
    for s in sigmas:
        levels.append(_full(cv2.GaussianBlur(_half(x), (0, 0), s / 2), x) if s >= 2 else
                      cv2.GaussianBlur(x, (0, 0), s))
    return [cv2.subtract(levels[i], levels[i + 1]) for i in range(len(sigmas))] + [levels[-1]]


_CHANNEL_MEAN = np.full((1, 3), 1 / 3, np.float32)
LUMA = np.array([[0.299, 0.587, 0.114]], np.float32)  # BT.601 weights: they sum to 1


def _local_energy(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of x^2 (one channel) over a window, computed at half resolution (it is smooth)."""
    return cv2.blur(_half(cv2.multiply(x, x)), (window // 2 + 1, window // 2 + 1))


class FlowSmoother(Smoother):
    """Flicker removal that keeps the current frame's detail.

    1. Flow of the *inputs* (DIS, medium preset, at ``scale`` resolution, area-downscaled so sensor
       noise averages out), backward t -> t-1, and forward (DIS fast preset) for the check; a pixel
       is trusted where the forward-backward check passes and the downscaled input, warped,
       matches (``residual_k``).
    2. The previous smoothed output (kept unrounded) is warped onto frame t with bicubic sampling.
    3. Colour: the chroma of the fresh output P_t is blended towards the warped one with weight
       strength x trust at every scale (GAN colour flicker is removed; the eye reads detail in
       luma, and the detail measure is luma's).
    4. Luma: P_t's and the warped frame's are split into detail bands (differences of Gaussians,
       ``sigmas``) and a base. The base is blended fully; each band with weight strength x trust x
       ``band_weights[b]``, the finest least, since subpixel misregistration there only blurs.
       Blending two partly uncorrelated textures lowers their energy (the softening a plain blend
       shows), so each blended band is rescaled to the local energy P_t has in it (gain >= 1,
       <= ``max_gain``, ``window`` px windows): texture stays as crisp as per-frame output, only
       its frame-to-frame change is damped (variance-preserving blending).

    In RGB: result = P + a (W - P) + (Y* - Y(P + a (W - P))) on all three channels, where Y* is the
    luma of step 4: adding one value to R, G and B moves luma by it and leaves chroma alone. Luma
    work is one channel: a 1080p frame costs less than half of banding all three (README).

    Measured with bench/bench_temporal.py (README): E_warp 0.31-0.44x of per-frame output with
    0.83-0.94x of its detail (Laplacian energy) and no lag on clean and noisy photo pans.
    """

    default_strength = 0.7
    sigmas = (0.6, 1.2, 2.5)
    band_weights = (0.4, 0.9, 1.0)
    max_gain = 3.0
    window = 9
    # flow at 1/4 of a 1080p pan of a real 2560x1600 photograph (480x270) raised E_warp from 0.46x to
    # 0.51x (bundled model) and 0.32x to 0.36x (style model) over 1/3 (640x360); at 720p 480x270
    # and 640x360 were within 0.03
    max_flow_side = 640

    def __init__(self, strength: float | None = None, scale: float = 0.5, residual_k: float = 30.0):
        super().__init__(strength)
        self.scale, self.residual_k = scale, residual_k
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        # the forward flow only checks the backward one: the fast preset (4x cheaper) gave the same
        # E_warp / detail / lag on the benchmark's pans; the warp's own flow needs the medium one
        self.dis_check = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self._announced: np.ndarray | None = None  # the last frame given to ahead()
        self._ahead: dict[int, tuple] = {}  # id(frame) -> (frame before it, frame, future flow and trust)
        self._worker, self._flow_lock = None, threading.Lock()  # (one DIS instance: one flow at a time)

    def ahead(self, rgb: np.ndarray) -> None:
        """Start the flow between the frame announced before and ``rgb`` on a worker thread (OpenCV
        releases the GIL): it runs while the model translates, off the frame's critical path."""
        prev, self._announced = self._announced, rgb
        if prev is None or prev.shape != rgb.shape:
            return
        if self._worker is None:
            from concurrent.futures import ThreadPoolExecutor
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="flow")
        while len(self._ahead) >= 8:  # frames that never came to be blended (cuts, a stopped run)
            self._ahead.pop(next(iter(self._ahead)))
        self._ahead[id(rgb)] = (prev, rgb, self._worker.submit(self._flow_and_trust_between, prev, rgb))

    def small_flow_and_trust(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Backward flow (t -> t-1) and trust in [0, 1] at the flow's resolution: ``scale``, at most
        ``max_flow_side`` px on the long side (flow in those pixels); started by ``ahead`` when it
        was announced after the previous frame."""
        started = self._ahead.pop(id(rgb), None)
        if started is not None and started[0] is self.prev_in and started[1] is rgb:
            return started[2].result()
        return self._flow_and_trust_between(self.prev_in, rgb)

    def _flow_and_trust_between(self, prev: np.ndarray, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._flow_lock:
            return self._flow_and_trust(prev, rgb)

    def _flow_and_trust(self, prev: np.ndarray, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = rgb.shape[:2]
        f = min(self.scale, self.max_flow_side / max(h, w))
        size = (max(8, round(w * f)), max(8, round(h * f)))
        a_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        b_rgb = cv2.resize(prev, size, interpolation=cv2.INTER_AREA)
        a, b = cv2.cvtColor(a_rgb, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b_rgb, cv2.COLOR_RGB2GRAY)
        bw = self.dis.calc(a, b, None)
        fw = self.dis_check.calc(b, a, None)
        res = cv2.absdiff(remap(b_rgb, bw), a_rgb).astype(np.float32)
        mse = cv2.transform(cv2.multiply(res, res), _CHANNEL_MEAN)  # per pixel, on 0..255 levels
        trust = cv2.exp(mse * np.float32(-10 * self.residual_k / 255.0 ** 2))
        return bw, cv2.multiply(trust, fb_consistent(bw, fw).astype(np.float32))

    def flow_and_trust(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``small_flow_and_trust`` brought to the frame's resolution."""
        bw, trust = self.small_flow_and_trust(rgb)
        h, w = rgb.shape[:2]
        if bw.shape[:2] != (h, w):
            bw = cv2.multiply(cv2.resize(bw, (w, h), interpolation=cv2.INTER_LINEAR), (w / bw.shape[1],) * 4)
            trust = cv2.resize(trust, (w, h), interpolation=cv2.INTER_LINEAR)
        return bw, trust

    def blend(self, rgb, out):
        # OpenCV arithmetic on same-shape arrays: numpy's (H, W, 3) x (H, W, 1) broadcasting costs
        # ~15 ms a 1080p operation on this kind of CPU, cv2.multiply ~1 ms
        bw, trust = self.flow_and_trust(rgb)
        alpha = self.strength * trust
        prev = self.prev_exact if self.prev_exact is not None else self.prev_out.astype(np.float32)
        warped = remap(prev, bw, cv2.INTER_CUBIC)
        fresh = out.astype(np.float32)
        fy = cv2.transform(fresh, LUMA)
        dy = cv2.subtract(cv2.transform(warped, LUMA), fy)
        # luma beyond the plain blend's: the bands' sum of gain x (p + k a d), less their plain part
        # sum of (p + a d) = (fy - base of fy) + a (dy - base of dy)
        fb, db = _bands(fy, self.sigmas), _bands(dy, self.sigmas)
        fix = cv2.subtract(cv2.subtract(fb[-1], fy), cv2.multiply(alpha, cv2.subtract(dy, db[-1])))
        for p, d, k in zip(fb, db, self.band_weights):
            mixed = cv2.add(p, cv2.multiply(alpha, d, scale=k))
            gain = cv2.sqrt(cv2.divide(_local_energy(p, self.window) + 1e-3, _local_energy(mixed, self.window) + 1e-3))
            fix = cv2.add(fix, cv2.multiply(mixed, _full(cv2.min(cv2.max(gain, 1.0), self.max_gain), p)))
        plain = cv2.blendLinear(fresh, warped, 1.0 - alpha, alpha)  # (1 - a) P + a W in one pass
        result = cv2.add(plain, cv2.merge([fix] * 3))
        cv2.min(result, (255.0,) * 4, dst=result)  # a 4-tuple reaches every channel (a scalar: only the first)
        cv2.max(result, (0.0,) * 4, dst=result)
        self.prev_exact = result
        return cv2.convertScaleAbs(result)  # >= 0 here: rounds to nearest, like the torch smoother


SMOOTHERS = {"ema": EmaSmoother, "motion": MotionSmoother, "flow": FlowSmoother}
