"""Load official CycleGAN/pix2pix ``.pth`` state_dicts and native ``.safetensors`` generators.

The architecture (ResNet or U-Net, ngf, blocks / downsamplings, norm, dropout layout, channels)
is read off the keys and shapes, and the official loader's legacy fixes are applied.
"""

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from engines.normstats import convert_norms

from ..errors import CheckpointError, InputError
from ..models import ResnetGenerator, UnetGenerator
from ..models.registry import ARCHS

_LEGACY_IN_KEYS = ("running_mean", "running_var", "num_batches_tracked")


@dataclass
class GeneratorInfo:
    """What a loaded generator is; also the metadata of a native ``.safetensors`` file."""

    family: str  # resnet | unet
    arch: str  # resnet_9blocks, unet_256, or e.g. resnet_4blocks
    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 64
    depth: int = 9  # residual blocks (resnet) or num_downs (unet)
    norm: str = "instance"
    dropout: bool = False
    use_bias: bool = True
    input_range: tuple[float, float] = (-1.0, 1.0)
    direction: str = ""
    train_size: int = 256
    name: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def size_multiple(self) -> int:
        return 4 if self.family == "resnet" else 2 ** self.depth

    def build(self) -> nn.Module:
        if self.family == "resnet":
            return ResnetGenerator(self.input_nc, self.output_nc, self.ngf, self.norm, self.dropout,
                                   self.depth, self.use_bias)
        return UnetGenerator(self.input_nc, self.output_nc, self.depth, self.ngf, self.norm,
                             self.dropout, self.use_bias)


def _norm_kind(sd: dict, norm_prefix: str, conv_prefix: str) -> str:
    if f"{norm_prefix}.weight" in sd:
        return "batch"
    if f"{norm_prefix}.running_mean" in sd or f"{conv_prefix}.bias" in sd:
        return "instance"
    return "none"


def _infer_resnet(sd: dict) -> GeneratorInfo:
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    if not blocks or blocks != list(range(10, 10 + len(blocks))):
        raise CheckpointError("ResNet checkpoint without residual blocks at model.10...")
    nb = len(blocks)
    w = sd["model.1.weight"]
    second = sd.get("model.10.conv_block.6.weight")
    dropout = second is not None and second.dim() == 4  # the second conv moves from 5 to 6
    last = f"model.{17 + nb}.weight"
    if last not in sd:
        raise CheckpointError(f"ResNet checkpoint without its last conv ({last})")
    return GeneratorInfo("resnet", f"resnet_{nb}blocks", w.shape[1], sd[last].shape[0], w.shape[0], nb,
                         _norm_kind(sd, "model.2", "model.1"), dropout, "model.4.bias" in sd)


def _infer_unet(sd: dict) -> GeneratorInfo:
    prefix, levels = "model.model.1", 0
    while f"{prefix}.model.1.weight" in sd:
        levels += 1
        prefix += ".model.3"
    w = sd["model.model.0.weight"]
    out = sd.get("model.model.3.weight")
    if levels < 4 or out is None:
        raise CheckpointError("U-Net checkpoint with too few levels or no output layer")
    p1 = "model.model.1.model"
    norm = _norm_kind(sd, f"{p1}.2", f"{p1}.1")
    return GeneratorInfo("unet", f"unet_{2 ** (levels + 1)}", w.shape[1], out.shape[1], w.shape[0],
                         levels + 1, norm, False, f"{p1}.1.bias" in sd)


def infer_info(sd: dict) -> GeneratorInfo:
    """Read the architecture off an official state_dict's keys and shapes."""
    if "model.model.0.weight" in sd:
        return _infer_unet(sd)
    if "model.1.weight" in sd:
        return _infer_resnet(sd)
    raise CheckpointError("unknown checkpoint layout: neither a ResNet (model.1.weight) nor a U-Net "
                          f"(model.model.0.weight); first keys: {', '.join(list(sd)[:4])}")


def _clean(sd: dict) -> dict:
    out = {}
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            continue
        out[k[7:] if k.startswith("module.") else k] = v
    return out


def _fit_state_dict(model: nn.Module, sd: dict) -> dict:
    """Official legacy fixes: drop instance-norm running stats, add a missing num_batches_tracked."""
    fixed = dict(sd)
    modules = dict(model.named_modules())
    for key in list(fixed):
        owner, _, leaf = key.rpartition(".")
        m = modules.get(owner)
        if isinstance(m, nn.InstanceNorm2d) and leaf in _LEGACY_IN_KEYS and not m.track_running_stats:
            del fixed[key]
    for name, m in modules.items():
        if isinstance(m, nn.BatchNorm2d) and f"{name}.num_batches_tracked" not in fixed:
            fixed[f"{name}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return fixed


def _load_strict(model: nn.Module, sd: dict, path: Path) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [k for k in expected if k in sd and sd[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}")
        if wrong:
            parts.append(f"shape mismatch {', '.join(wrong[:3])}")
        raise CheckpointError(f"{path}: unknown layout ({'; '.join(parts)})",
                              hint="pass --arch NAME if the architecture was guessed wrong")
    model.load_state_dict(sd, strict=True)


def read_state_dict(path: Path) -> tuple[dict, dict]:
    """(tensors, metadata) of a ``.pth``/``.pt`` or ``.safetensors`` file, with clear errors."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file")
    if path.suffix == ".safetensors":
        from safetensors import safe_open
        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
                return {k: f.get_tensor(k) for k in f.keys()}, json.loads(meta.get("streamgan", "{}"))
        except Exception as exc:
            raise CheckpointError(f"{path}: not a safetensors checkpoint ({exc})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if "Weights only load failed" in str(exc):  # a pickle with code in it, or no pickle at all
            why = "not a state_dict torch loads without running code"
        else:
            why = str(exc).splitlines()[0][:120]
        raise CheckpointError(f"{path}: not a checkpoint ({why})",
                              hint="pass a generator's state_dict (.pth) or .safetensors") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: not a state_dict of tensors")
    return _clean(obj), {}


def load_generator(path: str | Path, *, arch: str | None = None, bn_stats: str = "batch",
                   dropout: bool = False) -> nn.Module:
    """A ready-to-run generator (eval mode, fp32, CPU) with ``.info`` (a GeneratorInfo).

    bn_stats: "batch" normalises every image (or tile) with its own statistics, like the official
    test.py; "running" uses the stored running statistics. Dropout stays off unless asked for.
    """
    if bn_stats not in ("batch", "running"):
        raise CheckpointError(f"bn_stats must be 'batch' or 'running', not {bn_stats!r}")
    path = Path(path)
    sd, meta = read_state_dict(path)
    if meta:
        info = GeneratorInfo(**{**meta, "input_range": tuple(meta.get("input_range", (-1, 1)))})
    else:
        info = infer_info(sd)
    if arch is not None:
        if arch not in ARCHS:
            raise CheckpointError(f"unknown architecture {arch!r}", hint=f"known: {', '.join(ARCHS)}")
        factory = ARCHS[arch]
        depth = factory.preset.get("n_blocks", factory.preset.get("num_downs"))
        info.family, info.arch, info.depth = factory.family, arch, depth
    if info.input_nc not in (1, 3):
        raise CheckpointError(f"{path}: the generator takes {info.input_nc} input channels; "
                              "streamgan feeds RGB (3) or grayscale (1) frames")
    if dropout and info.family == "unet":  # U-Net dropout has no keys: add the official layers
        info.dropout = True
    model = info.build()
    _load_strict(model, _fit_state_dict(model, sd), path)
    convert_norms(model, bn_stats)
    model.eval()
    if dropout:
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.train()
    model.info = info
    model.bn_stats = bn_stats
    return model


def save_generator(model: nn.Module, path: str | Path, **meta) -> Path:
    """Write ``model``'s weights and metadata (its ``.info`` updated by ``meta``) as safetensors."""
    from safetensors.torch import save_file
    info = getattr(model, "info", None)
    if info is None:
        raise CheckpointError("save_generator needs a model from load_generator or the trainer (.info)")
    info_d = {**asdict(info), **meta}
    info_d["input_range"] = list(info_d["input_range"])
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(tmp), metadata={"streamgan": json.dumps(info_d)})
    tmp.chmod(0o644)
    tmp.replace(path)
    return path


def describe(model: nn.Module) -> dict:
    """The facts ``streamgan info`` prints for a generator."""
    info: GeneratorInfo = model.info
    d = asdict(info)
    d["parameters"] = sum(p.numel() for p in model.parameters())
    d["size_multiple"] = info.size_multiple
    if info.norm == "batch":  # how its batch norms are run (an instance-norm model has none)
        d["bn_stats"] = getattr(model, "bn_stats", "")
    return d
