"""The training loop for pix2pix and CycleGAN; checkpoints resume bit-exactly."""

import csv
import random
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..errors import OptionError
from ..models import NLayerDiscriminator
from ..models.registry import ARCHS
from ..translate.checkpoints import GeneratorInfo, save_generator
from .config import TrainConfig
from .data import PairedDataset, UnpairedDataset, epoch_order
from .losses import GAN_MODES, ImagePool, gan_loss, gradient_penalty


def init_weights(net: nn.Module, gain: float = 0.02) -> None:
    """Official 'normal' init: conv weights N(0, 0.02), norm weights N(1, 0.02), biases 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


def _generator(cfg: TrainConfig) -> nn.Module:
    if cfg.netG not in ARCHS:
        raise OptionError(f"--netG {cfg.netG!r}: known {', '.join(ARCHS)}")
    f = ARCHS[cfg.netG]
    depth = f.preset.get("n_blocks", f.preset.get("num_downs"))
    info = GeneratorInfo(f.family, cfg.netG, 3, 3, cfg.ngf, depth, cfg.norm, cfg.dropout, cfg.norm == "instance",
                         direction=cfg.direction, train_size=cfg.crop_size)
    net = info.build()
    init_weights(net)
    net.info = info
    return net


def _check(cfg: TrainConfig) -> None:
    if cfg.mode not in ("cyclegan", "pix2pix"):
        raise OptionError("mode must be cyclegan or pix2pix")
    if cfg.gan_mode not in GAN_MODES:
        raise OptionError(f"--gan-mode must be one of {', '.join(GAN_MODES)}")
    if cfg.crop_size > cfg.load_size:
        raise OptionError("--size (crop) must not exceed --load-size")
    f = ARCHS.get(cfg.netG)
    if f is not None and f.family == "unet" and cfg.crop_size % 2 ** f.preset["num_downs"]:
        raise OptionError(f"{cfg.netG} needs a crop size that is a multiple of {2 ** f.preset['num_downs']}")


class Trainer:
    def __init__(self, cfg: TrainConfig):
        cfg = cfg.resolved()
        _check(cfg)
        self.cfg = cfg
        self.device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        torch.manual_seed(cfg.seed)
        ds_cls = UnpairedDataset if cfg.mode == "cyclegan" else PairedDataset
        self.data = ds_cls(Path(cfg.data), cfg.load_size, cfg.crop_size, not cfg.no_flip, cfg.direction, cfg.seed)
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        cyc = cfg.mode == "cyclegan"
        self.G = {"G_A": _generator(cfg)} if not cyc else {"G_A": _generator(cfg), "G_B": _generator(cfg)}
        if cyc:
            self.G["G_B"].info = replace(self.G["G_B"].info, direction="BtoA" if cfg.direction == "AtoB" else "AtoB")
        d_in = 3 if cyc else 6
        self.D = {k: NLayerDiscriminator(d_in, cfg.ndf, cfg.n_layers_D, cfg.norm)
                  for k in (("D_A", "D_B") if cyc else ("D",))}
        for net in self.D.values():
            init_weights(net)
        for net in [*self.G.values(), *self.D.values()]:
            net.to(self.device).train()
        params = lambda nets: [p for n in nets for p in n.parameters()]  # noqa: E731
        self.opt_G = torch.optim.Adam(params(self.G.values()), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.opt_D = torch.optim.Adam(params(self.D.values()), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.pools = {k: ImagePool(cfg.pool_size) for k in ("A", "B")}
        self.rs = np.random.RandomState(cfg.seed)
        per_epoch = max(1, len(self.data) // cfg.batch_size)
        self.total = cfg.steps or (cfg.n_epochs + cfg.n_epochs_decay) * per_epoch
        self.decay_start = self.total * cfg.n_epochs / max(1, cfg.n_epochs + cfg.n_epochs_decay)
        self.per_epoch = per_epoch
        self.step = 0
        self.autocast = self.device.type == "cuda" and cfg.amp

    # -- schedule and checkpoints -------------------------------------------------------------
    def lr_factor(self) -> float:
        """Constant, then linear decay to zero over the last n_epochs_decay share of training."""
        span = max(1.0, self.total - self.decay_start)
        return 1.0 - max(0.0, self.step - self.decay_start) / span

    def state(self) -> dict:
        return {"step": self.step, "G": {k: v.state_dict() for k, v in self.G.items()},
                "D": {k: v.state_dict() for k, v in self.D.items()}, "opt_G": self.opt_G.state_dict(),
                "opt_D": self.opt_D.state_dict(), "pools": {k: p.images for k, p in self.pools.items()},
                "rs": self.rs.get_state(), "torch_rng": torch.get_rng_state(), "py_rng": random.getstate(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "config": asdict(self.cfg)}

    def load(self, path: Path) -> None:
        st = torch.load(path, map_location=self.device, weights_only=False)
        self.step = st["step"]
        for k, v in st["G"].items():
            self.G[k].load_state_dict(v)
        for k, v in st["D"].items():
            self.D[k].load_state_dict(v)
        self.opt_G.load_state_dict(st["opt_G"])
        self.opt_D.load_state_dict(st["opt_D"])
        for k, imgs in st["pools"].items():
            self.pools[k].images = imgs
        self.rs.set_state(st["rs"])
        torch.set_rng_state(st["torch_rng"])
        random.setstate(st["py_rng"])
        if st["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(st["cuda_rng"])

    def save(self) -> None:
        names = {"G_A": "latest_G_A", "G_B": "latest_G_B"} if len(self.G) == 2 else {"G_A": "latest_G"}
        for key, name in names.items():
            g = self.G[key]
            save_generator(g, self.out / f"{name}.safetensors", name=name)
            if self.cfg.export_official:
                sd = {k: v.detach().cpu() for k, v in g.state_dict().items()}
                torch.save(sd, self.out / f"{name.replace('latest_', 'latest_net_')}.pth")
        tmp = self.out / "resume.pt.tmp"
        torch.save(self.state(), tmp)
        tmp.replace(self.out / "resume.pt")

    # -- one optimisation step ----------------------------------------------------------------
    def _d_loss(self, netD, real, fake) -> torch.Tensor:
        loss = 0.5 * (gan_loss(netD(real), True, self.cfg.gan_mode) + gan_loss(netD(fake.detach()), False,
                                                                                self.cfg.gan_mode))
        if self.cfg.gan_mode == "wgangp":
            loss = loss + self.cfg.lambda_gp * gradient_penalty(netD, real, fake.detach(), self.rs)
        return loss

    def train_step(self, a: torch.Tensor, b: torch.Tensor) -> dict:
        cfg = self.cfg
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * self.lr_factor()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            if cfg.mode == "pix2pix":
                return self._pix2pix(a, b)
            return self._cyclegan(a, b)

    def _set_d_grad(self, on: bool) -> None:
        for d in self.D.values():
            d.requires_grad_(on)

    def _pix2pix(self, a, b) -> dict:
        G, D = self.G["G_A"], self.D["D"]
        fake = G(a)
        self._set_d_grad(True)
        self.opt_D.zero_grad(set_to_none=True)
        loss_d = self._d_loss(D, torch.cat([a, b], 1), torch.cat([a, fake], 1))
        loss_d.backward()
        self.opt_D.step()
        self._set_d_grad(False)
        self.opt_G.zero_grad(set_to_none=True)
        loss_gan = gan_loss(D(torch.cat([a, fake], 1)), True, self.cfg.gan_mode)
        loss_l1 = nn.functional.l1_loss(fake, b) * self.cfg.lambda_L1
        (loss_gan + loss_l1).backward()
        self.opt_G.step()
        return {"D": loss_d.item(), "G_GAN": loss_gan.item(), "G_L1": loss_l1.item()}

    def _cyclegan(self, a, b) -> dict:
        cfg, GA, GB, DA, DB = self.cfg, self.G["G_A"], self.G["G_B"], self.D["D_A"], self.D["D_B"]
        fake_b, fake_a = GA(a), GB(b)
        rec_a, rec_b = GB(fake_b), GA(fake_a)
        self._set_d_grad(False)
        self.opt_G.zero_grad(set_to_none=True)
        l1 = nn.functional.l1_loss
        idt = 0.0
        if cfg.lambda_identity > 0:
            idt = (l1(GA(b), b) * cfg.lambda_B + l1(GB(a), a) * cfg.lambda_A) * cfg.lambda_identity
        g_gan = gan_loss(DA(fake_b), True, cfg.gan_mode) + gan_loss(DB(fake_a), True, cfg.gan_mode)
        cyc = l1(rec_a, a) * cfg.lambda_A + l1(rec_b, b) * cfg.lambda_B
        (g_gan + cyc + idt).backward()
        self.opt_G.step()
        self._set_d_grad(True)
        self.opt_D.zero_grad(set_to_none=True)
        d_a = self._d_loss(DA, b, self.pools["B"].query(fake_b, self.rs))
        d_b = self._d_loss(DB, a, self.pools["A"].query(fake_a, self.rs))
        (d_a + d_b).backward()
        self.opt_D.step()
        return {"D_A": d_a.item(), "D_B": d_b.item(), "G_GAN": g_gan.item(), "cycle": cyc.item(),
                "idt": float(idt.detach()) if torch.is_tensor(idt) else idt}

    # -- the loop -----------------------------------------------------------------------------
    def batches(self):
        """(epoch, a, b) from the current step on; order and augmentation depend only on the seed."""
        cfg = self.cfg
        while True:
            epoch, offset = divmod(self.step, self.per_epoch)
            self.data.epoch = epoch
            order = epoch_order(len(self.data), cfg.seed, epoch)[offset * cfg.batch_size:
                                                                   self.per_epoch * cfg.batch_size]
            loader = torch.utils.data.DataLoader(
                torch.utils.data.Subset(self.data, order), batch_size=cfg.batch_size, shuffle=False,
                num_workers=cfg.workers, drop_last=True, persistent_workers=False)
            for a, b in loader:
                yield epoch, a.to(self.device), b.to(self.device)

    def sample(self, a, b) -> None:
        import cv2
        g = self.G["G_A"]
        g.eval()
        with torch.no_grad():
            fake = g(a[:4])
        g.train()
        rows = [torch.cat([x, y, z], 2) for x, y, z in zip(a[:4], fake.float(), b[:4])]
        grid = ((torch.cat(rows, 1).clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        (self.out / "samples").mkdir(exist_ok=True)
        cv2.imwrite(str(self.out / "samples" / f"step_{self.step:07d}.png"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))

    def run(self, progress: bool = True) -> dict:
        cfg = self.cfg
        if cfg.resume and (self.out / "resume.pt").exists():
            self.load(self.out / "resume.pt")
        log_path = self.out / "log.csv"
        writer, tb = None, None
        try:
            from torch.utils.tensorboard import SummaryWriter
            tb = SummaryWriter(str(self.out / "tb"))
        except ImportError:
            pass
        bar = tqdm(total=self.total, initial=self.step, unit="step", desc=cfg.mode, disable=not progress,
                   file=sys.stderr)
        t0, losses = time.perf_counter(), {}
        with open(log_path, "a", newline="") as f:
            for epoch, a, b in self.batches():
                if self.step >= self.total:
                    break
                losses = self.train_step(a, b)
                self.step += 1
                if writer is None:
                    writer = csv.DictWriter(f, ["step", "epoch", "lr", *losses])
                    if f.tell() == 0:
                        writer.writeheader()
                writer.writerow({"step": self.step, "epoch": epoch, "lr": cfg.lr * self.lr_factor(), **losses})
                if tb is not None:
                    for k, v in losses.items():
                        tb.add_scalar(f"loss/{k}", v, self.step)
                bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
                bar.update(1)
                if cfg.sample_every and self.step % cfg.sample_every == 0:
                    self.sample(a, b)
                if cfg.save_every and self.step % cfg.save_every == 0:
                    self.save()
        bar.close()
        self.save()
        return {"steps": self.step, "seconds": time.perf_counter() - t0, "losses": losses, "out": str(self.out)}


def train(cfg: TrainConfig, progress: bool = True) -> dict:
    """Train per ``cfg``; the final generator(s) land in cfg.out as latest_G*.safetensors."""
    return Trainer(cfg).run(progress)
