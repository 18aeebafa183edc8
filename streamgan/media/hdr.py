"""HDR footage (PQ, HLG; BT.2020) for models trained on SDR pictures.

A phone's video is 10-bit HEVC with the HLG transfer and BT.2020 primaries; an HDR10 file is PQ.
Fed as they are, a model sees code values it was never trained on. By default (``--hdr sdr``)
each frame is taken to linear light (PQ's EOTF; HLG's inverse OETF and its OOTF for a 1000 cd/m2
display: gamma 1.2, per channel as zimg applies it, so the result matches Debian's ffmpeg;
BT.2100's form on the luminance differs by up to 4 chroma levels on saturated colours), its
primaries mapped from BT.2020 to BT.709 (a matrix in linear light; what lies outside BT.709 is
clipped), tone mapped on its brightest component (the hue kept; ``--tonemap``), and encoded for a
BT.709 display (BT.1886's gamma 2.4): SDR BT.709, in units where 1.0 is 100 cd/m2 (``npl=100``, as
zscale). ``--hdr keep`` maps the translated SDR picture back to the
input's transfer and primaries (the inverse of each step) and gives back what the 8-bit SDR frame
lost to rounding (at most half a level a channel), so an output that equals its input round-trips at
10 bits; ``--hdr passthrough`` feeds the code values as they are (for models trained on HDR).

Everything runs on float32 arrays with OpenCV's vectorised exp, log and matrices (numpy's and
OpenCV's pow are 2-15x slower here), and interpolated tables where a curve has no cheap form
(BT.2390's, the tone curves' inverses).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PQ, HLG = 16, 18  # AVColorTransferCharacteristic
HDR_MODES = ("sdr", "keep", "passthrough")
TONEMAPS = ("hable", "bt2390", "reinhard", "clip")
DEFAULT_TONEMAP = "reinhard"  # the closest to the SDR picture an HDR grade was made from (bench_hdr.py)
TRANSFER_NAMES = {PQ: "PQ", HLG: "HLG"}
REFERENCE_WHITE = 100.0  # cd/m2 that linear 1.0 stands for (SDR white)
HLG_DISPLAY_PEAK = 1000.0  # the nominal display the HLG OOTF is computed for (BT.2100)
HLG_GAMMA = 1.2  # the system gamma of the HLG OOTF at 1000 cd/m2

# PQ (SMPTE ST 2084)
_M1, _M2 = 2610 / 16384, 2523 / 4096 * 128
_C1, _C2, _C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
# HLG (ARIB STD-B67 / BT.2100)
_A = 0.17883277
_B = 1 - 4 * _A
_C = 0.5 - _A * np.log(4 * _A)


def is_hdr(trc: int) -> bool:
    return trc in (PQ, HLG)


def pq_eotf(e: np.ndarray) -> np.ndarray:
    """PQ signal [0, 1] -> cd/m2 / 10000."""
    p = np.power(np.clip(e, 0, 1), 1 / _M2)
    return np.power(np.maximum(p - _C1, 0) / (_C2 - _C3 * p), 1 / _M1)


def pq_inverse_eotf(y: np.ndarray) -> np.ndarray:
    p = np.power(np.clip(y, 0, 1), _M1)
    return np.power((_C1 + _C2 * p) / (1 + _C3 * p), _M2)


def bt1886_eotf(v: np.ndarray) -> np.ndarray:
    """SDR BT.709 signal -> display light: BT.1886's gamma 2.4 (zimg's reading of BT.709 for
    display-referred light, and so Debian's ffmpeg's)."""
    return np.power(np.clip(v, 0, 1), 2.4)


def _rgb_to_xyz(primaries) -> np.ndarray:
    (xr, yr), (xg, yg), (xb, yb), (xw, yw) = primaries
    m = np.array([[xr / yr, xg / yg, xb / yb], [1, 1, 1], [(1 - xr - yr) / yr, (1 - xg - yg) / yg, (1 - xb - yb) / yb]])
    white = np.array([xw / yw, 1, (1 - xw - yw) / yw])
    return m * np.linalg.solve(m, white)


_P709 = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06), (0.3127, 0.3290))
_P2020 = ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046), (0.3127, 0.3290))
BT2020_TO_709 = (np.linalg.inv(_rgb_to_xyz(_P709)) @ _rgb_to_xyz(_P2020)).astype(np.float32)
BT709_TO_2020 = np.linalg.inv(BT2020_TO_709.astype(np.float64)).astype(np.float32)


def _hable(x):
    a, b, c, d, e, f = 0.15, 0.50, 0.10, 0.20, 0.02, 0.30
    return (x * (x * a + c * b) + d * e) / (x * (x * a + b) + d * f) - e / f


def tone_curve(name: str, peak: float):
    """The curve for ``name``: linear light (1.0 = reference white, up to ``peak``) -> [0, 1]."""
    if name == "hable":
        top = _hable(np.float32(peak))
        return lambda x: _hable(x) / top
    if name == "reinhard":  # FFmpeg's tonemap=reinhard with its default parameter
        return lambda x: x / (x + 1.0) * ((peak + 1.0) / peak)
    if name == "clip":
        return lambda x: np.minimum(x, 1.0)
    if name == "bt2390":  # the EETF of ITU-R BT.2390: a knee in the PQ domain, identity below it
        src_max = float(pq_inverse_eotf(np.float64(peak * REFERENCE_WHITE / 10000)))
        dst_max = float(pq_inverse_eotf(np.float64(REFERENCE_WHITE / 10000))) / src_max
        ks = 1.5 * dst_max - 0.5

        def eetf(x):
            e = pq_inverse_eotf(x * (REFERENCE_WHITE / 10000)) / src_max
            t = np.clip((e - ks) / (1 - ks), 0, 1)
            t2, t3 = t * t, t * t * t
            knee = (2 * t3 - 3 * t2 + 1) * ks + (t3 - 2 * t2 + t) * (1 - ks) + (-2 * t3 + 3 * t2) * dst_max
            e = np.where(e < ks, e, knee)
            return np.minimum(pq_eotf(e * src_max) * (10000 / REFERENCE_WHITE), 1.0)
        return eetf
    raise ValueError(f"unknown tone map {name!r}")


class _Table:
    """``f`` on [0, top] tabulated on a square-root axis (``sqrt_axis``: dense where f is steep,
    near black) or a linear one, read back with linear interpolation: a few cheap passes instead
    of the curve's own arithmetic per value."""

    def __init__(self, f, top: float = 1.0, sqrt_axis: bool = True, n: int = 16384):
        u = np.linspace(0, 1, n + 2)
        self.values = f(top * (u * u if sqrt_axis else u)).astype(np.float32)
        self.steps = np.diff(self.values).astype(np.float32)
        self.n, self.sqrt_axis, self.scale = n, sqrt_axis, np.float32(1 / top)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        u = np.clip(x * self.scale, 0, 1)
        if self.sqrt_axis:
            u = cv2.sqrt(u)
        u *= np.float32(self.n)
        i = u.astype(np.intp)
        u -= i
        out = np.take(self.values, i)
        u *= np.take(self.steps, i)
        out += u
        return out


def _pow(x: np.ndarray, p: float) -> np.ndarray:
    """x ** p for x >= 0, float32, with OpenCV's vectorised exp and log. Their slow paths are kept
    out: pow's on zeros (37 ms instead of 2.6 for a 720p frame), log's on zeros and exp's on results
    below float32's normal range (underflow: 28 ms instead of 0.5)."""
    y = cv2.log(np.maximum(x, np.float32(1e-30)))
    y *= np.float32(p)
    np.maximum(y, np.float32(-80), out=y)  # exp(-80) ~ 2e-35: zero for every use here
    return cv2.exp(y)


def _pq_eotf_fast(e: np.ndarray) -> np.ndarray:
    """pq_eotf in float32, as linear light (1.0 = reference white)."""
    p = _pow(e, 1 / _M2)
    num = np.maximum(p - np.float32(_C1), np.float32(0))
    p *= np.float32(-_C3)
    p += np.float32(_C2)
    num /= p
    out = _pow(num, 1 / _M1)
    out *= np.float32(10000 / REFERENCE_WHITE)
    return out


def _hlg_inverse_oetf_fast(e: np.ndarray) -> np.ndarray:
    low = e * e
    low *= np.float32(1 / 3)
    high = cv2.exp(np.maximum((e - np.float32(_C)) * np.float32(1 / _A), np.float32(-80)))
    high += np.float32(_B)
    high *= np.float32(1 / 12)
    return np.where(e <= np.float32(0.5), low, high)


def _hlg_oetf_fast(x: np.ndarray) -> np.ndarray:
    """Scene light [0, 1] -> HLG signal (ARIB STD-B67's OETF), float32, OpenCV's sqrt and log."""
    np.clip(x, 0, 1, out=x)
    low = cv2.sqrt(x * np.float32(3))
    high = cv2.log(np.maximum(x * np.float32(12) - np.float32(_B), np.float32(1e-6)))  # (no zeros: fast)
    high *= np.float32(_A)
    high += np.float32(_C)
    return np.where(x <= np.float32(1 / 12), low, high)


def _pq_inverse_eotf_fast(x: np.ndarray) -> np.ndarray:
    """pq_inverse_eotf of linear light (1.0 = reference white) in float32 with OpenCV's pow."""
    p = _pow(np.clip(x * np.float32(REFERENCE_WHITE / 10000), 0, 1), _M1)
    num = p * np.float32(_C2)
    num += np.float32(_C1)
    p *= np.float32(_C3)
    p += np.float32(1)
    num /= p
    return _pow(num, _M2)


def _channel_max(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(x[..., 0], x[..., 1]), x[..., 2])


@dataclass
class HdrConverter:
    """PQ or HLG BT.2020 frames (16-bit RGB code values) <-> SDR BT.709 RGB uint8, and back."""

    trc: int
    tonemap: str = DEFAULT_TONEMAP
    peak: float | None = None  # brightest linear value (1.0 = 100 cd/m2); default 10 (1000 cd/m2)

    def __post_init__(self):
        if not is_hdr(self.trc):
            raise ValueError("not an HDR transfer")
        self.peak = float(self.peak or HLG_DISPLAY_PEAK / REFERENCE_WHITE)
        self._curve = tone_curve(self.tonemap, self.peak)
        # the cheap curves are computed as they are; BT.2390's (PQ both ways) from a table
        self._curve_fast = _Table(self._curve, self.peak, n=65536) if self.tonemap == "bt2390" else self._curve
        # the curve's inverse, for keep, on the curve's own values (which rise steeply near 1)
        xs = np.linspace(0, 1, 262145, dtype=np.float64) ** 2 * self.peak
        ys = np.maximum.accumulate(self._curve(xs))
        self._uncurve = _Table(lambda y: np.interp(y, ys, xs), 1.0, sqrt_axis=False, n=65536)
        self._sdr_linear = (bt1886_eotf(np.arange(256) / 255)).astype(np.float32)

    @property
    def name(self) -> str:
        return TRANSFER_NAMES[self.trc]

    # -- HDR -> SDR ----------------------------------------------------------------------------

    def to_sdr(self, code: np.ndarray, keep_residual: bool = False):
        """RGB uint16 code values (H, W, 3; full scale 65535) -> SDR BT.709 RGB uint8, and with
        ``keep_residual`` what rounding to 8 bits took away (int8, in 1/254ths of a level), for ``to_hdr``."""
        e = code.astype(np.float32)
        e *= np.float32(1 / 65535)
        if self.trc == PQ:  # signal -> linear (1.0 = reference white)
            lin = _pq_eotf_fast(e)
        else:  # signal -> scene light, then the OOTF
            lin = _hlg_inverse_oetf_fast(e)
        if self.trc == HLG:  # the OOTF for the nominal display: gamma 1.2 at 1000 cd/m2, per channel
            lin = _pow(lin, HLG_GAMMA)
            lin *= np.float32(HLG_DISPLAY_PEAK / REFERENCE_WHITE)
        lin = cv2.transform(lin, BT2020_TO_709)
        np.maximum(lin, 0, out=lin)  # outside BT.709: clipped
        sig = _channel_max(lin)
        np.maximum(sig, np.float32(1e-6), out=sig)
        scale = self._curve_fast(sig)
        scale /= sig
        lin *= scale[..., None]
        np.minimum(lin, 1, out=lin)
        v = _pow(lin, 1 / 2.4)  # BT.1886's inverse EOTF
        v *= np.float32(255)
        q = np.rint(v)
        out = q.astype(np.uint8)
        if not keep_residual:
            return out, None
        v -= q  # in [-0.5, 0.5]: kept in 1/254ths of a level (int8; float16 conversion is slow in numpy)
        v *= np.float32(254)
        return out, np.rint(v).astype(np.int8)

    # -- SDR -> HDR ----------------------------------------------------------------------------

    def to_hdr(self, rgb: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        """The inverse of ``to_sdr``: SDR BT.709 RGB uint8 (plus ``residual`` levels, when the
        shapes agree) -> RGB uint16 code values in the converter's transfer and BT.2020."""
        if residual is not None and residual.shape == rgb.shape:
            v = residual.astype(np.float32)
            v *= np.float32(1 / 254)
            v += rgb
            v *= np.float32(1 / 255)
            lin = _pow(np.clip(v, 0, 1), 2.4)
        else:
            lin = np.take(self._sdr_linear, rgb.astype(np.intp))
        sig = _channel_max(lin)
        np.maximum(sig, np.float32(1e-6), out=sig)
        scale = self._uncurve(sig)
        scale /= sig
        lin *= scale[..., None]
        lin = cv2.transform(lin, BT709_TO_2020)
        np.maximum(lin, 0, out=lin)
        if self.trc == HLG:  # undo the OOTF: display light -> scene light
            lin *= np.float32(REFERENCE_WHITE / HLG_DISPLAY_PEAK)
            lin = _pow(lin, 1 / HLG_GAMMA)
            e = _hlg_oetf_fast(lin)
        else:
            e = _pq_inverse_eotf_fast(lin)
        e *= np.float32(65535)
        return np.rint(e).astype(np.uint16)


def describe(trc: int, mode: str, tonemap: str) -> str:
    """The run's one line about what it did with an HDR input."""
    name = TRANSFER_NAMES[trc]
    if mode == "sdr":
        return (f"HDR input ({name}, BT.2020): tone mapped ({tonemap}) to SDR BT.709 for the model; the "
                f"output is SDR BT.709 (--hdr keep: HDR out, --hdr passthrough: the code values as they are)")
    if mode == "keep":
        return (f"HDR input ({name}, BT.2020): tone mapped ({tonemap}) to SDR for the model and mapped back: "
                f"the output is {name} BT.2020 like the input")
    return f"HDR input ({name}, BT.2020): its code values go to the model as they are (--hdr passthrough)"
