"""``streamgan run`` and ``info`` on images: native size, folders, globs, bad input."""

import json

import cv2
import numpy as np
import pytest

from streamgan.cli import main
from tests.streamgan.helpers import textured_frames, tiny_resnet, tiny_unet


@pytest.fixture
def images(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    for i, (h, w) in enumerate([(257, 301), (64, 64), (33, 17)]):
        cv2.imwrite(str(d / f"{i}.png"), textured_frames(1, h, w, seed=i)[0])
    return d


@pytest.mark.parametrize("kind", ["resnet", "unet"])
def test_odd_sizes_come_back_same_size(tmp_path, images, kind):
    gen = tiny_resnet(tmp_path / "g.pth") if kind == "resnet" else tiny_unet(tmp_path / "g.pth", num_downs=6)
    out = tmp_path / "o.png"
    assert main(["run", "--engine", str(gen), "--input", str(images / "0.png"), "--output", str(out),
                 "--no-progress"]) == 0
    img = cv2.imread(str(out))
    assert img.shape == (257, 301, 3) and img.std() > 1


def test_folder_and_glob(tmp_path, images, capsys):
    gen = tiny_resnet(tmp_path / "g.pth")
    assert main(["run", "--engine", str(gen), "--input", str(images), "--output", str(tmp_path / "out"),
                 "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "1.png", "2.png"]
    assert cv2.imread(str(tmp_path / "out" / "2.png")).shape == (33, 17, 3)
    assert main(["run", "--engine", str(gen), "--input", str(images / "[12].png"), "--output",
                 str(tmp_path / "g"), "--no-progress"]) == 0
    assert len(list((tmp_path / "g").iterdir())) == 2
    assert main(["run", "--engine", str(gen), "--input", str(images / "*.jpg"), "--output", str(tmp_path / "h")]) == 2
    assert "matches no images" in capsys.readouterr().err


def test_unreadable_image_and_info(tmp_path, images, capsys):
    gen = tiny_resnet(tmp_path / "g.pth")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    assert main(["run", "--engine", str(gen), "--input", str(tmp_path / "bad.png"), "--output",
                 str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "not a readable image" in err and not (tmp_path / "o.png").exists()
    assert main(["info", str(gen), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["arch"] == "resnet_2blocks" and info["size_multiple"] == 4 and info["parameters"] > 0
    assert main(["run", "--engine", str(gen), "--input", str(images / "0.png"), "--output",
                 str(tmp_path / "x.png"), "--tile", "-3"]) == 2
    assert np.isfinite(info["parameters"])


def test_a_folder_of_several_sizes_runs_in_flight_and_each_image_is_its_own(tmp_path):
    """Images go through a host engine in flight (Translator.submit), and a folder that switches
    size flushes the other size first: every output is that image's own picture, translated alone."""
    from streamgan.translate.engine import open_engine
    from streamgan.translate.translator import Translator
    from tests.streamgan.helpers import db
    gen = tiny_resnet(tmp_path / "g.pth")
    d = tmp_path / "mixed"
    d.mkdir()
    sizes = [(48, 64), (64, 48), (48, 64), (48, 64), (40, 40), (64, 48), (48, 64), (64, 48)]
    for i, (h, w) in enumerate(sizes):
        cv2.imwrite(str(d / f"{i}.png"), textured_frames(1, h, w, seed=10 + i)[0])
    assert main(["run", "--engine", str(gen), "--input", str(d), "--output", str(tmp_path / "out"), "--backend",
                 "openvino", "--precision", "fp32", "--no-progress"]) == 0
    with open_engine(gen, backend="openvino", precision="fp32") as engine:
        alone = Translator(engine)
        for i, (h, w) in enumerate(sizes):
            rgb = cv2.cvtColor(cv2.imread(str(d / f"{i}.png")), cv2.COLOR_BGR2RGB)
            got = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / f"{i}.png")), cv2.COLOR_BGR2RGB)
            assert got.shape == (h, w, 3) and db(got, alone(rgb)) >= 50, i


def test_transparency_goes_around_the_model(tmp_path, capsys):
    """An image with an alpha channel (8- and 16-bit PNG, one EXIF-turned, WebP): the model sees
    the colour, the output carries the input's alpha as it was, turned with the picture; a format
    without alpha (.jpg) gets the colour and a note saying the transparency was left out."""
    from PIL import Image

    from streamgan.media.images import read_image
    from streamgan.translate.engine import open_engine
    from streamgan.translate.translator import Translator
    from tests.streamgan.helpers import db, photo
    gen = tiny_resnet(tmp_path / "g.pth")
    rgb = photo(40, 56)
    alpha = np.tile(np.linspace(0, 255, 56).round().astype(np.uint8), (40, 1))
    alpha[:8] = 0  # a fully transparent band
    bgra = np.dstack([rgb[..., ::-1], alpha])
    d = tmp_path / "in"
    d.mkdir()
    cv2.imwrite(str(d / "a8.png"), bgra)
    cv2.imwrite(str(d / "a16.png"), bgra.astype(np.uint16) * 257)
    cv2.imwrite(str(d / "a.webp"), bgra, [cv2.IMWRITE_WEBP_QUALITY, 101])  # (above 100: lossless)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    Image.fromarray(np.dstack([rgb, alpha])).save(d / "turned.png", exif=exif)
    args = ["--backend", "openvino", "--precision", "fp32", "--no-progress"]
    assert main(["run", "--engine", str(gen), "--input", str(d), "--output", str(tmp_path / "out"), *args]) == 0
    with open_engine(gen, backend="openvino", precision="fp32") as engine:
        alone = Translator(engine)
        for name, turn in (("a8.png", 0), ("a16.png", 0), ("a.webp", 0), ("turned.png", -1)):
            got = cv2.imread(str(tmp_path / "out" / name), cv2.IMREAD_UNCHANGED)
            assert got.shape == np.rot90(bgra, turn).shape and got.dtype == np.uint8, name
            assert np.array_equal(got[..., 3], np.rot90(alpha, turn)), name
            seen = np.rot90(alpha, turn) > 0  # (WebP keeps no colour under transparent pixels)
            assert db(got[..., 2::-1][seen], alone(read_image(d / name))[seen]) >= 50, name
    capsys.readouterr()
    assert main(["run", "--engine", str(gen), "--input", str(d / "a8.png"), "--output", str(tmp_path / "o.jpg"),
                 *args]) == 0
    assert "transparency left out of o.jpg" in capsys.readouterr().err
    assert cv2.imread(str(tmp_path / "o.jpg"), cv2.IMREAD_UNCHANGED).shape == (40, 56, 3)


def test_phone_heic_photographs_in_and_out(tmp_path):
    """HEIC (a phone's photographs, read and written with libheif): decoded as the photograph (to
    HEVC's loss), shown turned as it says, transparency kept; the output is the model's picture of
    the decoded colour (an exact format, the model's own; a HEIC, an identity model's, to HEVC's loss)."""
    import pillow_heif
    from PIL import Image

    from streamgan.media.images import read_image, read_image_alpha
    from streamgan.translate.engine import open_engine
    from streamgan.translate.translator import Translator
    from tests.streamgan.helpers import db, identity_onnx, photo
    rgb = photo(48, 64)
    alpha = np.tile(np.linspace(40, 255, 64).round().astype(np.uint8), (48, 1))
    d = tmp_path / "in"
    d.mkdir()
    pillow_heif.from_bytes("RGB", (64, 48), rgb.tobytes()).save(str(d / "plain.heic"), quality=95)
    pillow_heif.from_bytes("RGBA", (64, 48), np.dstack([rgb, alpha]).tobytes()).save(str(d / "alpha.heic"),
                                                                                        quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise (libheif writes it as the file's rotation)
    pillow_heif.register_heif_opener()
    Image.fromarray(rgb).save(d / "turned.heic", exif=exif.tobytes(), quality=95)
    turns = {"plain.heic": 0, "alpha.heic": 0, "turned.heic": -1}
    for name, turn in turns.items():
        assert db(read_image(d / name), np.rot90(rgb, turn)) > 30, name
    assert db(read_image_alpha(d / "alpha.heic")[1], alpha) > 30
    args = ["--no-progress", "--precision", "fp32"]
    ident = identity_onnx(tmp_path / "id.onnx")
    assert main(["run", "--engine", str(ident), "--input", str(d), "--output", str(tmp_path / "out"), *args]) == 0
    for name, turn in turns.items():
        got, got_alpha = read_image_alpha(tmp_path / "out" / name)
        assert db(got, np.rot90(rgb, turn)) > 30, name  # (HEVC twice)
        assert (got_alpha is not None) == (name == "alpha.heic"), name
    assert db(read_image_alpha(tmp_path / "out" / "alpha.heic")[1], alpha) > 30
    gen = tiny_resnet(tmp_path / "g.pth")
    for name in turns:
        assert main(["run", "--engine", str(gen), "--input", str(d / name), "--output",
                     str(tmp_path / f"{name}.png"), "--backend", "openvino", *args]) == 0
    with open_engine(gen, backend="openvino", precision="fp32") as engine:
        alone = Translator(engine)
        for name in turns:
            got = cv2.imread(str(tmp_path / f"{name}.png"))[..., ::-1]
            assert db(got, alone(read_image(d / name))) >= 50, name


def test_animated_and_multipage_images_keep_every_picture(tmp_path, capsys):
    """An animated WebP, an APNG and a multi-page TIFF: every picture is translated (the first was,
    and the rest left out without a word), each the model's own picture of it, with the times and
    the transparency kept; a format of one picture (.jpg) gets the first and a note."""
    from streamgan.media.images import read_animation
    from streamgan.translate.engine import open_engine
    from streamgan.translate.translator import Translator
    from tests.streamgan.helpers import db, photo
    gen = tiny_resnet(tmp_path / "g.pth")
    rgbs = [photo(40, 56, shift=6 * k) for k in range(3)]
    alpha = np.tile(np.linspace(30, 255, 56).round().astype(np.uint8), (40, 1))
    anim = cv2.Animation()
    anim.frames = [np.dstack([f[..., ::-1], alpha]) for f in rgbs]
    anim.durations, anim.loop_count = [80, 120, 200], 0
    d = tmp_path / "in"
    d.mkdir()
    assert cv2.imwriteanimation(str(d / "a.webp"), anim, [cv2.IMWRITE_WEBP_QUALITY, 101])  # (lossless)
    assert cv2.imwriteanimation(str(d / "b.png"), anim)
    assert cv2.imwritemulti(str(d / "c.tiff"), [f[..., ::-1] for f in rgbs])
    args = ["--backend", "openvino", "--precision", "fp32", "--no-progress"]
    out = tmp_path / "out"
    assert main(["run", "--engine", str(gen), "--input", str(d), "--output", str(out), *args]) == 0
    with open_engine(gen, backend="openvino", precision="fp32") as engine:
        alone = Translator(engine)
        for name, lossless in (("a.webp", False), ("b.png", True), ("c.tiff", True)):
            src, got = read_animation(d / name), read_animation(out / name)
            assert got is not None and len(got.frames) == 3 and got.durations == src.durations, name
            for k in range(3):
                want = alone(src.frames[k])
                assert got.frames[k].shape == want.shape and (db(got.frames[k], want) >= 50 or not lossless), name
                assert (got.alphas[k] is None) == (name == "c.tiff"), name
                if name == "b.png":
                    assert np.array_equal(got.alphas[k], alpha)
    capsys.readouterr()
    assert main(["run", "--engine", str(gen), "--input", str(d / "a.webp"), "--output", str(tmp_path / "o.jpg"),
                 *args]) == 0
    assert "o.jpg (3 pictures in): only the first picture" in capsys.readouterr().err
    assert cv2.imcount(str(tmp_path / "o.jpg")) == 1


def test_exif_is_kept_upright(tmp_path, capsys):
    """A phone's JPEG (camera, date, place; shown turned 90 degrees): the .jpg, .png and .heic
    outputs carry its EXIF, the orientation set upright as the picture is written (it was dropped:
    the photograph lost its date and place); a .webp output says it is left out."""
    import pillow_heif
    from PIL import Image

    from tests.streamgan.helpers import photo
    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112], exif[0x0132] = "Apple", "iPhone 15", 6, "2026:05:01 10:00:00"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 30.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    src = tmp_path / "phone.jpg"
    Image.fromarray(photo(48, 64)).save(src, exif=exif.tobytes(), quality=95)
    gen = tiny_resnet(tmp_path / "g.pth")
    for suffix in (".jpg", ".png", ".heic", ".webp"):
        out = tmp_path / f"out{suffix}"
        assert main(["run", "--engine", str(gen), "--input", str(src), "--output", str(out), "--no-progress"]) == 0
        err = capsys.readouterr().err
        with Image.open(out) as im:
            assert im.size == (48, 64), suffix  # upright: 48 wide, 64 high
            got = im.getexif()
        if suffix == ".webp":
            assert not got and "EXIF (camera, date, place) left out of out.webp" in err
            continue
        assert (got[0x010F], got[0x0110], got[0x0132]) == ("Apple", "iPhone 15", "2026:05:01 10:00:00"), suffix
        assert got.get(0x0112, 1) == 1 and got.get_ifd(0x8825)[2] == (48.0, 51.0, 30.0), suffix
        assert cv2.imread(str(out)) is not None or suffix == ".heic"  # (still a file OpenCV reads)
