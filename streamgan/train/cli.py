"""``streamgan train cyclegan|pix2pix``: flags named as in the official repository where possible."""

import json
import sys

from .config import TrainConfig


def add_train_args(p) -> None:
    p.add_argument("mode", choices=("cyclegan", "pix2pix"), help="what to train")
    p.add_argument("--data", required=True,
                   help="cyclegan: DIR/trainA, DIR/trainB; pix2pix: DIR/train (A|B) or DIR/A, DIR/B")
    p.add_argument("--out", "--output", default="runs/train",
                   help="folder for checkpoints, samples and logs (default runs/train)")
    p.add_argument("--overwrite", action="store_true", help="start over in an --out folder that holds a run")
    p.add_argument("--netG", default="",
                   help="resnet_9blocks, resnet_6blocks, unet_256, unet_128 (default: resnet_9blocks for "
                        "cyclegan, unet_256 for pix2pix)")
    p.add_argument("--ngf", type=int, default=64, help="generator filters in the first layer (default 64)")
    p.add_argument("--ndf", type=int, default=64, help="discriminator filters in the first layer (default 64)")
    p.add_argument("--n-layers-D", type=int, default=3, help="PatchGAN depth (default 3 = 70x70)")
    p.add_argument("--norm", default="", choices=("", "instance", "batch", "none"),
                   help="normalisation (default: instance for cyclegan, batch for pix2pix)")
    p.add_argument("--dropout", action="store_true", default=None,
                   help="dropout in the generator (default: on for pix2pix, off for cyclegan)")
    p.add_argument("--no-dropout", dest="dropout", action="store_false", help="no dropout in the generator")
    p.add_argument("--gan-mode", default="", choices=("", "lsgan", "vanilla", "wgangp"),
                   help="GAN loss (default: lsgan for cyclegan, vanilla for pix2pix)")
    p.add_argument("--lambda-A", type=float, default=10.0, help="cycle loss A->B->A weight (default 10)")
    p.add_argument("--lambda-B", type=float, default=10.0, help="cycle loss B->A->B weight (default 10)")
    p.add_argument("--lambda-identity", type=float, default=0.5,
                   help="identity loss weight, a fraction of the cycle weights (default 0.5)")
    p.add_argument("--lambda-L1", type=float, default=100.0, help="pix2pix L1 loss weight (default 100)")
    p.add_argument("--pool-size", type=int, default=50, help="CycleGAN's pool of past fakes (default 50)")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default 0.0002)")
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default 0.5)")
    p.add_argument("--epochs", type=int, default=100, help="epochs at the initial learning rate (default 100)")
    p.add_argument("--epochs-decay", type=int, default=100,
                   help="epochs of linear decay to zero (default 100)")
    p.add_argument("--steps", type=int, default=0, help="step budget; overrides the epochs (default 0: epochs)")
    p.add_argument("--batch-size", type=int, default=1, help="images per step (default 1)")
    p.add_argument("--load-size", type=int, default=286, help="images are resized to this first (default 286)")
    p.add_argument("--size", type=int, default=256, help="random crop size (default 256)")
    p.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    p.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB", help="translation direction (default AtoB)")
    p.add_argument("--workers", type=int, default=2, help="data loader processes (default 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--sample-every", type=int, default=500, help="steps between sample grids (default 500)")
    p.add_argument("--save-every", type=int, default=1000, help="steps between checkpoints (default 1000)")
    p.add_argument("--export-official", action="store_true", help="also write latest_net_G*.pth state_dicts")
    p.add_argument("--resume", action="store_true", help="continue from OUT/resume.pt")
    p.add_argument("--no-amp", dest="amp", action="store_false", help="no bf16 autocast on CUDA")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when present)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def cmd_train(args) -> int:
    from pathlib import Path

    from ..errors import OptionError
    from ..options import check_device
    from .trainer import train
    check_device(args.device)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out {out}: a file, not a folder")
    if not args.resume and not args.overwrite and out.is_dir() and any(out.glob("latest_*")) | any(
            out.glob("resume.pt")):
        raise OptionError(f"--out {out}: holds a training run already",
                          hint="--resume to continue it, --overwrite to start over, or another --out")
    cfg = TrainConfig(
        mode=args.mode, data=args.data, out=args.out, netG=args.netG, ngf=args.ngf, ndf=args.ndf,
        n_layers_D=args.n_layers_D, norm=args.norm, dropout=args.dropout, gan_mode=args.gan_mode,
        lambda_A=args.lambda_A, lambda_B=args.lambda_B, lambda_identity=args.lambda_identity,
        lambda_L1=args.lambda_L1, pool_size=args.pool_size, lr=args.lr, beta1=args.beta1, n_epochs=args.epochs,
        n_epochs_decay=args.epochs_decay, steps=args.steps, batch_size=args.batch_size, load_size=args.load_size,
        crop_size=args.size, no_flip=args.no_flip, direction=args.direction, workers=args.workers, seed=args.seed,
        sample_every=args.sample_every, save_every=args.save_every, export_official=args.export_official,
        resume=args.resume, amp=args.amp, device=args.device)
    report = train(cfg, progress=not args.no_progress)
    print(json.dumps(report, default=str))
    print(f"trained {report['steps']} steps in {report['seconds']:.0f} s; generator(s) in {report['out']}",
          file=sys.stderr)
    return 0


cmd_train.add_args = add_train_args
