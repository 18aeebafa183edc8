"""Training options: the official repository's defaults as a frozen dataclass."""

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    mode: str  # cyclegan | pix2pix
    data: str
    out: str = "runs/train"
    netG: str = ""  # default: resnet_9blocks (cyclegan), unet_256 (pix2pix)
    ngf: int = 64
    ndf: int = 64
    n_layers_D: int = 3
    norm: str = ""  # default: instance (cyclegan), batch (pix2pix)
    dropout: bool | None = None  # default: off (cyclegan), on (pix2pix)
    gan_mode: str = ""  # lsgan (cyclegan) | vanilla (pix2pix) | wgangp
    lambda_A: float = 10.0
    lambda_B: float = 10.0
    lambda_identity: float = 0.5
    lambda_L1: float = 100.0
    lambda_gp: float = 10.0
    pool_size: int = 50
    lr: float = 2e-4
    beta1: float = 0.5
    n_epochs: int = 100
    n_epochs_decay: int = 100
    steps: int = 0  # a step budget overrides epochs
    batch_size: int = 1
    load_size: int = 286
    crop_size: int = 256
    no_flip: bool = False
    direction: str = "AtoB"
    workers: int = 2
    seed: int = 0
    sample_every: int = 500
    save_every: int = 1000
    export_official: bool = False
    resume: bool = False
    amp: bool = True  # bf16 autocast on CUDA
    device: str | None = None

    def resolved(self) -> "TrainConfig":
        from dataclasses import replace
        cyc = self.mode == "cyclegan"
        return replace(self, netG=self.netG or ("resnet_9blocks" if cyc else "unet_256"),
                       norm=self.norm or ("instance" if cyc else "batch"),
                       dropout=(not cyc) if self.dropout is None else self.dropout,
                       gan_mode=self.gan_mode or ("lsgan" if cyc else "vanilla"),
                       pool_size=self.pool_size if cyc else 0)
