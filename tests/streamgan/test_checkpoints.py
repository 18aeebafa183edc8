"""Official layouts load and match an independent functional forward; native round trip."""

import pytest
import torch
import torch.nn.functional as F

from streamgan import load_generator, save_generator
from streamgan.errors import CheckpointError
from streamgan.models import NLayerDiscriminator, ResnetGenerator, UnetGenerator
from streamgan.translate.checkpoints import infer_info
from tests.streamgan.helpers import tiny_resnet, tiny_unet


def _norm(x, sd, key, kind):
    if kind == "instance":
        return F.instance_norm(x, eps=1e-5)
    if kind == "batch":  # per-image statistics (official test.py: train-mode BN at batch 1)
        return F.instance_norm(x, weight=sd[f"{key}.weight"], bias=sd[f"{key}.bias"], eps=1e-5)
    return x


def resnet_forward(sd, x, n_blocks, norm):
    """The official ResnetGenerator written as functional calls on the raw state_dict."""
    b = lambda k: sd.get(f"{k}.bias")  # noqa: E731
    x = F.conv2d(F.pad(x, (3,) * 4, mode="reflect"), sd["model.1.weight"], b("model.1"))
    x = F.relu(_norm(x, sd, "model.2", norm))
    for c, n in ((4, 5), (7, 8)):
        x = F.relu(_norm(F.conv2d(x, sd[f"model.{c}.weight"], b(f"model.{c}"), 2, 1), sd, f"model.{n}", norm))
    for i in range(10, 10 + n_blocks):
        p = f"model.{i}.conv_block"
        y = F.conv2d(F.pad(x, (1,) * 4, mode="reflect"), sd[f"{p}.1.weight"], b(f"{p}.1"))
        y = F.relu(_norm(y, sd, f"{p}.2", norm))
        y = F.conv2d(F.pad(y, (1,) * 4, mode="reflect"), sd[f"{p}.5.weight"], b(f"{p}.5"))
        x = x + _norm(y, sd, f"{p}.6", norm)
    for c in (10 + n_blocks, 13 + n_blocks):
        x = F.conv_transpose2d(x, sd[f"model.{c}.weight"], b(f"model.{c}"), 2, 1, output_padding=1)
        x = F.relu(_norm(x, sd, f"model.{c + 1}", norm))
    last = 17 + n_blocks
    return torch.tanh(F.conv2d(F.pad(x, (3,) * 4, mode="reflect"), sd[f"model.{last}.weight"],
                               sd[f"model.{last}.bias"]))


def unet_forward(sd, x, norm, prefix="model.model", depth=0):
    """The official UnetGenerator, recursively, on the raw state_dict."""
    b = lambda k: sd.get(f"{k}.bias")  # noqa: E731
    if depth == 0:
        d = F.conv2d(x, sd[f"{prefix}.0.weight"], b(f"{prefix}.0"), 2, 1)
        inner = unet_forward(sd, d, norm, f"{prefix}.1.model", 1)
        return torch.tanh(F.conv_transpose2d(F.relu(inner), sd[f"{prefix}.3.weight"], b(f"{prefix}.3"), 2, 1))
    d = F.conv2d(F.leaky_relu(x, 0.2), sd[f"{prefix}.1.weight"], b(f"{prefix}.1"), 2, 1)
    if f"{prefix}.3.model.1.weight" in sd:  # middle level
        d = _norm(d, sd, f"{prefix}.2", norm)
        inner = unet_forward(sd, d, norm, f"{prefix}.3.model", depth + 1)
        u = F.conv_transpose2d(F.relu(inner), sd[f"{prefix}.5.weight"], b(f"{prefix}.5"), 2, 1)
        u = _norm(u, sd, f"{prefix}.6", norm)
    else:  # innermost
        u = F.conv_transpose2d(F.relu(d), sd[f"{prefix}.3.weight"], b(f"{prefix}.3"), 2, 1)
        u = _norm(u, sd, f"{prefix}.4", norm)
    return torch.cat([x, u], 1)


@pytest.mark.parametrize("n_blocks", [9, 6, 2])
@pytest.mark.parametrize("legacy", [False, True])
def test_resnet_instance_matches_functional(tmp_path, n_blocks, legacy):
    path = tiny_resnet(tmp_path / "g.pth", n_blocks=n_blocks, legacy=legacy)
    model = load_generator(path)
    assert model.info.arch == f"resnet_{n_blocks}blocks" and model.info.norm == "instance"
    sd = torch.load(path)
    x = torch.rand(2, 3, 36, 44) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model(x), resnet_forward(sd, x, n_blocks, "instance"), atol=1e-5, rtol=1e-5)


def test_resnet_batchnorm_and_dropout_layouts(tmp_path):
    path = tiny_resnet(tmp_path / "bn.pth", norm="batch")
    m = load_generator(path)
    assert m.info.norm == "batch" and not m.info.use_bias
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(m(x), resnet_forward(torch.load(path), x, 2, "batch"), atol=1e-5, rtol=1e-5)
    d = load_generator(tiny_resnet(tmp_path / "do.pth", dropout=True))
    assert d.info.dropout and "model.10.conv_block.6.weight" in d.state_dict()
    with torch.no_grad():  # dropout off by default: deterministic
        assert torch.equal(d(x), d(x))


def test_official_resnet9_key_count():
    sd = ResnetGenerator(3, 3, 64, "instance", False, 9).state_dict()
    assert len(sd) == 48 and sum(v.numel() for v in sd.values()) == 11_378_179
    assert tuple(sd["model.19.weight"].shape) == (256, 128, 3, 3)
    sd6 = ResnetGenerator(3, 3, 64, "instance", False, 6).state_dict()
    assert len(sd6) == 36 and sum(v.numel() for v in sd6.values()) == 7_837_699


def test_official_unet256_keys():
    g = UnetGenerator(3, 3, 8, 64, "batch")
    sd = g.state_dict()
    assert len(sd) == 82 and sum(p.numel() for p in g.parameters()) == 54_413_955
    p7 = "model.model.1" + ".model.3" * 6
    assert tuple(sd[f"{p7}.model.1.weight"].shape) == (512, 512, 4, 4)
    assert infer_info(sd).arch == "unet_256"
    assert len(UnetGenerator(3, 3, 7, 64, "batch").state_dict()) == 70


@pytest.mark.parametrize("num_downs", [7, 8])
@pytest.mark.parametrize("drop_nbt", [False, True])
def test_unet_batch_matches_functional(tmp_path, num_downs, drop_nbt):
    path = tiny_unet(tmp_path / "u.pth", num_downs=num_downs, drop_nbt=drop_nbt)
    m = load_generator(path)
    assert m.info.arch == f"unet_{2 ** num_downs}" and m.info.size_multiple == 2 ** num_downs
    x = torch.rand(2, 3, 2 ** num_downs, 2 ** num_downs) * 2 - 1
    with torch.no_grad():
        out = m(x)
        # each image normalised on its own, even inside a batch
        torch.testing.assert_close(out[1:], m(x[1:]), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out, unet_forward(torch.load(path), x, "batch"), atol=1e-5, rtol=1e-5)


def test_unet_instance_and_running_stats(tmp_path):
    path = tiny_unet(tmp_path / "ui.pth", norm="instance")
    m = load_generator(path)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(m(x), unet_forward(torch.load(path), x, "instance"), atol=1e-5, rtol=1e-5)
    bn = tiny_unet(tmp_path / "ub.pth")
    running = load_generator(bn, bn_stats="running")
    ref = UnetGenerator(3, 3, 6, 4, "batch")
    ref.load_state_dict(torch.load(bn))
    with torch.no_grad():
        torch.testing.assert_close(running(x), ref.eval()(x), atol=1e-5, rtol=1e-5)


def test_native_round_trip_exact(tmp_path):
    m = load_generator(tiny_resnet(tmp_path / "g.pth"))
    out = save_generator(m, tmp_path / "g.safetensors", direction="AtoB", name="zebra", train_size=128)
    m2 = load_generator(out)
    assert m2.info.direction == "AtoB" and m2.info.name == "zebra" and m2.info.train_size == 128
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))


def test_module_prefix_stripped(tmp_path):
    path = tiny_resnet(tmp_path / "g.pth")
    torch.save({f"module.{k}": v for k, v in torch.load(path).items()}, tmp_path / "dp.pth")
    assert load_generator(tmp_path / "dp.pth").info.arch == "resnet_2blocks"


def test_bad_checkpoints(tmp_path):
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_generator(tmp_path / "text.pth")
    torch.save({"foo.weight": torch.zeros(3)}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="unknown checkpoint layout"):
        load_generator(tmp_path / "odd.pth")
    sd = torch.load(tiny_resnet(tmp_path / "g.pth"))
    sd["model.99.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match="unexpected model.99.weight"):
        load_generator(tmp_path / "extra.pth")
    g = ResnetGenerator(4, 3, 8, "instance", False, 2)
    torch.save(g.state_dict(), tmp_path / "four.pth")
    with pytest.raises(CheckpointError, match="4 input channels"):
        load_generator(tmp_path / "four.pth")


def test_patchgan_shape():
    d = NLayerDiscriminator(3, 64, 3, "batch")
    assert tuple(d(torch.rand(1, 3, 256, 256)).shape) == (1, 1, 30, 30)
