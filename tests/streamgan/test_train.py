"""Training: a few steps of each mode, bit-exact resume, official export, bad data, learning."""

import cv2
import numpy as np
import pytest
import torch

from streamgan import load_generator
from streamgan.cli import main
from streamgan.data.synthetic import write_pairs
from streamgan.errors import InputError
from streamgan.train import TrainConfig, train
from streamgan.train.trainer import Trainer

TINY = dict(ngf=4, ndf=4, load_size=36, crop_size=32, workers=0, sample_every=2, save_every=0, n_layers_D=2)


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    return write_pairs(tmp_path_factory.mktemp("pairs"), 6, size=40, seed=1)


@pytest.fixture(scope="module")
def unpaired(tmp_path_factory, paired):
    root = tmp_path_factory.mktemp("unpaired")
    for sub in ("trainA", "trainB"):
        (root / sub).mkdir()
    for i, f in enumerate(sorted((paired / "train").iterdir())):
        img = cv2.imread(str(f))
        w = img.shape[1] // 2
        cv2.imwrite(str(root / "trainA" / f.name), img[:, :w])
        if i % 2 == 0:
            cv2.imwrite(str(root / "trainB" / f.name), img[:, w:])
    return root


@pytest.mark.parametrize("gan_mode", ["vanilla", "wgangp"])
def test_pix2pix_steps_and_official_export(tmp_path, paired, gan_mode):
    cfg = TrainConfig("pix2pix", str(paired), out=str(tmp_path), netG="unet_128", steps=3, gan_mode=gan_mode,
                      export_official=True, **{**TINY, "load_size": 140, "crop_size": 128})
    r = train(cfg, progress=False)
    assert r["steps"] == 3 and all(np.isfinite(v) for v in r["losses"].values())
    native = load_generator(tmp_path / "latest_G.safetensors")
    official = load_generator(tmp_path / "latest_net_G.pth")
    assert official.info.arch == "unet_128" and official.info.norm == "batch"
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        assert torch.equal(native(x), official(x))
    assert (tmp_path / "log.csv").read_text().count("\n") == 4
    assert list((tmp_path / "samples").glob("*.png"))


def test_cyclegan_steps(tmp_path, unpaired):
    cfg = TrainConfig("cyclegan", str(unpaired), out=str(tmp_path), netG="resnet_6blocks", steps=2, pool_size=1,
                      **TINY)
    r = train(cfg, progress=False)
    assert {"D_A", "D_B", "cycle", "idt"} <= set(r["losses"])
    a, b = load_generator(tmp_path / "latest_G_A.safetensors"), load_generator(tmp_path / "latest_G_B.safetensors")
    assert a.info.direction == "AtoB" and b.info.direction == "BtoA"



def test_phone_photographs_and_any_image_mode_train(tmp_path, unpaired):
    """A domain folder of a phone's HEIC photographs, a turned JPEG and a grey 16-bit PNG (as users
    collect them) are read as `streamgan run` reads them (a HEIC stopped training before its first
    step: 'unreadable image')."""
    import pillow_heif
    from PIL import Image

    from tests.streamgan.helpers import photo
    data = tmp_path / "data"
    (data / "trainA").mkdir(parents=True)
    (data / "trainB").mkdir()
    for f in sorted((unpaired / "trainA").iterdir())[:2]:
        (data / "trainA" / f.name).write_bytes(f.read_bytes())
    rgb = photo(40, 56)
    pillow_heif.from_bytes("RGB", (56, 40), rgb.tobytes()).save(str(data / "trainB" / "phone.heic"), quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(data / "trainB" / "turned.jpg", exif=exif.tobytes())
    cv2.imwrite(str(data / "trainB" / "grey16.png"), (rgb[..., 0].astype(np.uint16) * 257))
    r = train(TrainConfig("cyclegan", str(data), out=str(tmp_path / "o"), netG="resnet_6blocks", steps=2,
                          pool_size=1, **TINY), progress=False)
    assert r["steps"] == 2 and all(np.isfinite(v) for v in r["losses"].values())

def test_resume_is_bit_exact(tmp_path, unpaired):
    base = dict(netG="resnet_6blocks", pool_size=2, **TINY)
    straight = Trainer(TrainConfig("cyclegan", str(unpaired), out=str(tmp_path / "a"), steps=4, **base))
    straight.run(progress=False)
    Trainer(TrainConfig("cyclegan", str(unpaired), out=str(tmp_path / "b"), steps=2, **base)).run(progress=False)
    resumed = Trainer(TrainConfig("cyclegan", str(unpaired), out=str(tmp_path / "b"), steps=4, resume=True, **base))
    resumed.run(progress=False)
    for k in straight.G:
        for (n, p), q in zip(straight.G[k].state_dict().items(), resumed.G[k].state_dict().values()):
            assert torch.equal(p, q), n


def test_bad_data_fails_before_training(tmp_path, capsys):
    (tmp_path / "empty" / "train").mkdir(parents=True)
    assert main(["train", "pix2pix", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no images" in capsys.readouterr().err
    bad = tmp_path / "bad"
    (bad / "trainA").mkdir(parents=True)
    (bad / "trainB").mkdir()
    cv2.imwrite(str(bad / "trainA" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (bad / "trainB" / "b.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="b.png"):
        Trainer(TrainConfig("cyclegan", str(bad), out=str(tmp_path / "o2"), **TINY))
    mism = tmp_path / "mism"
    (mism / "A").mkdir(parents=True)
    (mism / "B").mkdir()
    cv2.imwrite(str(mism / "A" / "1.png"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(mism / "B" / "2.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="do not match"):
        Trainer(TrainConfig("pix2pix", str(mism), out=str(tmp_path / "o3"), netG="resnet_6blocks", **TINY))
    assert main(["train", "pix2pix", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o4")]) == 2


def test_learns_colour_inversion(tmp_path):
    """A learnable mapping: after a few hundred steps L1 to the target is far below the identity's."""
    rs = np.random.RandomState(0)
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    for i in range(16):
        img = cv2.resize((rs.rand(4, 4, 3) * 255).astype(np.uint8), (32, 32), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(tmp_path / "A" / f"{i}.png"), img)
        cv2.imwrite(str(tmp_path / "B" / f"{i}.png"), 255 - img)
    cfg = TrainConfig("pix2pix", str(tmp_path), out=str(tmp_path / "run"), netG="resnet_6blocks", norm="instance",
                      dropout=False, steps=250, lr=1e-3, batch_size=4,
                      **{**TINY, "ngf": 8, "load_size": 32, "sample_every": 0})
    train(cfg, progress=False)
    g = load_generator(tmp_path / "run" / "latest_G.safetensors")
    a = torch.from_numpy(cv2.imread(str(tmp_path / "A" / "3.png"))).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        l1 = (g(a) - (-a)).abs().mean().item()
    identity = (a - (-a)).abs().mean().item()
    assert l1 < 0.25 * identity, (l1, identity)
