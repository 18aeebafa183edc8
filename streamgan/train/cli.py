"""``streamgan train cyclegan|pix2pix``: flags named as in the official repository where possible."""

import json
import sys

from .config import TrainConfig


def add_train_args(p) -> None:
    p.add_argument("mode", choices=("cyclegan", "pix2pix"))
    p.add_argument("--data", required=True,
                   help="cyclegan: DIR/trainA, DIR/trainB; pix2pix: DIR/train (A|B) or DIR/A, DIR/B")
    p.add_argument("--out", default="runs/train", help="checkpoints, samples and logs")
    p.add_argument("--netG", default="", help="resnet_9blocks, resnet_6blocks, unet_256, unet_128")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--n-layers-D", type=int, default=3, help="PatchGAN depth (3 = 70x70)")
    p.add_argument("--norm", default="", choices=("", "instance", "batch", "none"))
    p.add_argument("--dropout", action="store_true", default=None)
    p.add_argument("--no-dropout", dest="dropout", action="store_false")
    p.add_argument("--gan-mode", default="", choices=("", "lsgan", "vanilla", "wgangp"))
    p.add_argument("--lambda-A", type=float, default=10.0)
    p.add_argument("--lambda-B", type=float, default=10.0)
    p.add_argument("--lambda-identity", type=float, default=0.5)
    p.add_argument("--lambda-L1", type=float, default=100.0)
    p.add_argument("--pool-size", type=int, default=50)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--epochs", type=int, default=100, help="epochs at the initial learning rate")
    p.add_argument("--epochs-decay", type=int, default=100, help="epochs of linear decay to zero")
    p.add_argument("--steps", type=int, default=0, help="step budget (overrides epochs)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--load-size", type=int, default=286)
    p.add_argument("--size", type=int, default=256, help="crop size")
    p.add_argument("--no-flip", action="store_true")
    p.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-every", type=int, default=500)
    p.add_argument("--save-every", type=int, default=1000)
    p.add_argument("--export-official", action="store_true", help="also write latest_net_G*.pth state_dicts")
    p.add_argument("--resume", action="store_true", help="continue from OUT/resume.pt")
    p.add_argument("--no-amp", dest="amp", action="store_false", help="no bf16 autocast on CUDA")
    p.add_argument("--device", default=None)
    p.add_argument("--no-progress", action="store_true")


def cmd_train(args) -> int:
    from .trainer import train
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
