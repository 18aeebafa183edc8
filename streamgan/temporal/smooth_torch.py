"""The detail-keeping flow smoother with its per-pixel work in torch, on the engine's GPU.

Same arithmetic as ``temporal.FlowSmoother`` (tested equal on the CPU): DIS flow and trust are
computed on the host at <= 640 px and uploaded (a few hundred kB); the upsampling, the bicubic warp
of the previous result (kept on the device), the luma band split, the energy-preserving gains and
the blend run as torch ops on the device, so a 1080p frame costs a few small kernels instead of
~100 ms of host OpenCV on two cores.
"""


import torch
import torch.nn.functional as F

from .smooth import LUMA, FlowSmoother


def _gauss(sigma: float, device) -> torch.Tensor:
    """OpenCV's Gaussian kernel for float images (size round(8 sigma + 1) | 1)."""
    n = int(round(sigma * 8 + 1)) | 1
    x = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
    k = torch.exp(-x * x / (2 * sigma * sigma))
    return (k / k.sum()).float().to(device)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (1, C, H, W), reflect-101 borders (OpenCV's default)."""
    k = _gauss(sigma, x.device)
    c, r = x.shape[1], k.numel() // 2
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _half(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.interpolate(x, size=((h + 1) // 2, (w + 1) // 2), mode="area")


def _full(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _bands(x: torch.Tensor, sigmas) -> list[torch.Tensor]:
    levels = [x]
    for s in sigmas:
        levels.append(_full(_blur(_half(x), s / 2), x.shape[-2:]) if s >= 2 else _blur(x, s))
    return [levels[i] - levels[i + 1] for i in range(len(sigmas))] + [levels[-1]]


def _local_energy(x: torch.Tensor, window: int) -> torch.Tensor:
    e = _half(x * x)
    k = window // 2 + 1
    lo, hi = (k - 1) // 2, k // 2
    return F.avg_pool2d(F.pad(e, (lo, hi, lo, hi), mode="reflect"), k, stride=1)


def _warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """img sampled at x + flow(x), bicubic, border replicated (cv2.remap INTER_CUBIC)."""
    h, w = img.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, device=img.device, dtype=torch.float32),
                            torch.arange(w, device=img.device, dtype=torch.float32), indexing="ij")
    gx = (xs + flow[0, 0]) * (2 / max(w - 1, 1)) - 1
    gy = (ys + flow[0, 1]) * (2 / max(h - 1, 1)) - 1
    return F.grid_sample(img, torch.stack([gx, gy], dim=-1)[None], mode="bicubic", padding_mode="border",
                         align_corners=True)


class TorchFlowSmoother(FlowSmoother):
    """FlowSmoother whose blend runs on ``device``; its state stays there between frames."""

    def __init__(self, strength: float | None = None, device="cuda", **kw):
        super().__init__(strength, **kw)
        self.device = torch.device(device)

    @torch.inference_mode()
    def blend(self, rgb, out):
        h, w = rgb.shape[:2]
        small_bw, small_trust = self.small_flow_and_trust(rgb)
        flow = torch.from_numpy(small_bw).to(self.device).permute(2, 0, 1)[None] * (w / small_bw.shape[1])
        trust = torch.from_numpy(small_trust).to(self.device)[None, None]
        if small_bw.shape[:2] != (h, w):
            flow, trust = _full(flow, (h, w)), _full(trust, (h, w))
        alpha = self.strength * trust
        prev = self.prev_exact if isinstance(self.prev_exact, torch.Tensor) else \
            torch.from_numpy(self.prev_out).to(self.device).permute(2, 0, 1)[None].float()
        fresh = torch.from_numpy(out).to(self.device).permute(2, 0, 1)[None].float()
        warped = _warp(prev, flow)
        luma = torch.from_numpy(LUMA).to(self.device).view(1, 3, 1, 1)
        fy = (fresh * luma).sum(1, keepdim=True)
        dy = (warped * luma).sum(1, keepdim=True) - fy
        fb, db = _bands(fy, self.sigmas), _bands(dy, self.sigmas)
        fix = (fb[-1] - fy) - alpha * (dy - db[-1])
        for p, d, k in zip(fb, db, self.band_weights):
            mixed = p + (k * alpha) * d
            gain = torch.sqrt((_local_energy(p, self.window) + 1e-3) / (_local_energy(mixed, self.window) + 1e-3))
            fix = fix + mixed * _full(gain.clamp(1.0, self.max_gain), (h, w))
        result = fresh + alpha * (warped - fresh) + fix
        self.prev_exact = result.clamp(0, 255)
        return (self.prev_exact + 0.5).to(torch.uint8)[0].permute(1, 2, 0).cpu().numpy()


