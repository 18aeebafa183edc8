"""Image files and folders as frame sources and sinks."""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, OutputError
from .files import atomic_path, is_pattern, listing

HEIF_SUFFIXES = {".heic", ".heif"}  # a phone's photographs (read and written with pillow-heif: libheif)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", *HEIF_SUFFIXES}


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def expand_images(spec: str) -> list[Path]:
    """An image file, a folder (its images, sorted) or a glob pattern -> image paths."""
    p, files = Path(spec), listing(spec)
    if files is None:
        if not p.exists():
            raise InputError(f"{p}: no such file")
        return [p]
    paths = [q for q in files if is_image(q)]
    if not paths:
        raise InputError(f"{spec}: the pattern matches no images" if is_pattern(spec)
                         else f"{p}: the folder holds no images or videos")
    return paths


ALPHA_SUFFIXES = {".png", ".webp", ".tif", ".tiff", *HEIF_SUFFIXES}  # what holds an alpha channel


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 (H, W, 3), turned as its EXIF orientation says; grayscale and alpha are converted."""
    return read_image_alpha(path)[0]


def read_image_alpha(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``read_image``'s picture and the image's alpha channel, uint8 (H, W) aligned with it, where
    it has one that is not opaque everywhere (else None). The model sees the colour only; the alpha
    goes around it (``write_image``)."""
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    if path.suffix.lower() in HEIF_SUFFIXES:
        return _read_heif(path)
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path}: not a readable image")
    suffix = path.suffix.lower()
    alpha = _alpha(data, img) if suffix in ALPHA_SUFFIXES and (suffix != ".png" or _png_alpha(data)) else None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), alpha


def _png_alpha(data: np.ndarray) -> bool:
    """Whether a PNG's header says it has transparency (an RGBA or grey+alpha colour type, or a
    tRNS chunk before the pixels): the others are not decoded a second time for an alpha."""
    head = data[:1 << 16].tobytes()
    return len(head) > 25 and head[25] in (4, 6) or b"tRNS" in head[:head.find(b"IDAT")]


def _to8(a: np.ndarray) -> np.ndarray:
    """8-bit codes of 8-bit, 16-bit or float ([0, 1]) samples."""
    if a.dtype == np.uint8:
        return a
    scale = 1 / 257 if a.dtype == np.uint16 else 255.0
    return np.clip(a * scale + 0.5, 0, 255).astype(np.uint8)


def _split_alpha(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Decoded pixels (grey, grey+alpha, 3 or 4 channels, any depth) -> 3-channel uint8 colour in
    their order, and the alpha where there is one not opaque everywhere."""
    pixels = _to8(pixels if pixels.ndim == 3 else pixels[..., None])
    colour, alpha = (pixels[..., :-1], pixels[..., -1]) if pixels.shape[2] in (2, 4) else (pixels, None)
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    if alpha is not None and (alpha == 255).all():
        alpha = None
    return np.ascontiguousarray(colour), None if alpha is None else np.ascontiguousarray(alpha)


def _read_heif(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """A HEIC/HEIF image (its primary picture; libheif applies its turn and mirror, and takes 10-bit
    pictures to 8): RGB and alpha as ``read_image_alpha`` gives them."""
    import pillow_heif
    try:
        pixels = np.asarray(pillow_heif.open_heif(str(path), convert_hdr_to_8bit=True))
    except (ValueError, RuntimeError, OSError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from None
    return _split_alpha(pixels)


def _alpha(data: np.ndarray, img: np.ndarray) -> np.ndarray | None:
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # (as stored: no EXIF turn, 8 or 16 bits)
    if raw is None:
        return None
    colour, alpha = _split_alpha(raw)
    if alpha is None:
        return None
    # the turn EXIF asked of the colour picture, found among the 8 (OpenCV turns IMREAD_COLOR only)
    turns = [np.rot90(a, k) for a in (colour, colour[:, ::-1]) for k in range(4)]
    fits = [i for i, t in enumerate(turns) if t.shape == img.shape]
    best = min(fits, key=lambda i: np.abs(turns[i].astype(np.int16) - img).mean())
    flipped, k = divmod(best, 4)
    return np.ascontiguousarray(np.rot90(alpha[:, ::-1] if flipped else alpha, k))


ANIMATED_SUFFIXES = {".webp", ".png", ".tif", ".tiff"}  # what can hold several pictures (animation, pages)


@dataclass
class Animation:
    """The pictures of an animated image (WebP, APNG) or a multi-page TIFF: RGB uint8 each, their
    alpha channels (None where opaque), and how long each is shown (ms; none for pages)."""

    frames: list[np.ndarray]
    alphas: list[np.ndarray | None]
    durations: list[int]
    loop: int = 0


def read_animation(path: Path) -> Animation | None:
    """``path``'s pictures where it holds several (None for a single picture)."""
    if path.suffix.lower() not in ANIMATED_SUFFIXES or cv2.imcount(str(path)) < 2:
        return None
    if path.suffix.lower() in (".tif", ".tiff"):
        ok, pictures = cv2.imreadmulti(str(path), flags=cv2.IMREAD_UNCHANGED)
        durations, loop = [], 0
    else:
        ok, anim = cv2.imreadanimation(str(path))
        pictures, durations, loop = list(anim.frames), [int(d) for d in anim.durations], int(anim.loop_count)
    if not ok or not pictures:
        raise InputError(f"{path}: not a readable image")
    frames, alphas = [], []
    for colour, alpha in map(_split_alpha, pictures):
        frames.append(cv2.cvtColor(colour, cv2.COLOR_BGR2RGB))
        alphas.append(alpha)
    return Animation(frames, alphas, durations, loop)


def write_animation(path: Path, anim: Animation) -> None:
    """Write atomically: an animated WebP / PNG (its durations and loop kept) or a multi-page TIFF."""
    alphas = anim.alphas
    if any(a is not None for a in alphas):  # one layout for every picture: the opaque ones opaque
        alphas = [np.full(f.shape[:2], 255, np.uint8) if a is None else a for f, a in zip(anim.frames, alphas)]
    pictures = [_bgr(rgb, alpha) for rgb, alpha in zip(anim.frames, alphas)]
    with atomic_path(path) as tmp:
        if path.suffix.lower() in (".tif", ".tiff"):
            ok = cv2.imwritemulti(str(tmp), pictures)
        else:
            out = cv2.Animation()
            out.frames, out.durations, out.loop_count = pictures, anim.durations, anim.loop
            ok = cv2.imwriteanimation(str(tmp), out)
        if not ok:
            raise OutputError(f"{path}: cannot write an animated {path.suffix} image")


def _bgr(rgb: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """A picture as OpenCV writes it: BGR, and ``alpha`` as a fourth channel where given (scaled to
    the picture if the model changed its size)."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if alpha is None:
        return bgr
    if alpha.shape != rgb.shape[:2]:
        alpha = cv2.resize(alpha, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.dstack([bgr, alpha])


EXIF_SUFFIXES = {".jpg", ".jpeg", ".png", *HEIF_SUFFIXES}  # what an input's EXIF is written back into


def exif_of(path: Path) -> bytes | None:
    """An image's EXIF (camera, lens, date, place), its orientation set upright, as the picture is
    read (the turn applied); None where it has none."""
    from PIL import Image
    try:
        if path.suffix.lower() in HEIF_SUFFIXES:
            import pillow_heif
            data = pillow_heif.open_heif(str(path)).info.get("exif")
        else:
            with Image.open(path) as im:
                data = im.info.get("exif")
        if not data:
            return None
        exif = Image.Exif()
        exif.load(data)
    except Exception:  # (an EXIF that does not parse is left out, as a file without one)
        return None
    if 0x0112 in exif:
        exif[0x0112] = 1
    return exif.tobytes() or None


def _with_exif(suffix: str, encoded: bytes, exif: bytes) -> bytes:
    """An encoded JPEG or PNG with ``exif`` (as ``exif_of`` gives it: 'Exif\\0\\0' and a TIFF
    structure) in it: a JPEG's APP1 segment after its start, a PNG's eXIf chunk after its header."""
    import struct
    import zlib
    if suffix in (".jpg", ".jpeg"):
        if len(exif) > 65533:  # (one segment's most)
            return encoded
        at = 2 + (2 + struct.unpack(">H", encoded[4:6])[0] if encoded[2:4] == b"\xff\xe0" else 0)  # (after JFIF's)
        return encoded[:at] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + encoded[at:]
    tiff = exif[6:] if exif.startswith(b"Exif\0\0") else exif
    chunk = struct.pack(">I", len(tiff)) + b"eXIf" + tiff + struct.pack(">I", zlib.crc32(b"eXIf" + tiff))
    end = 8 + 8 + 13 + 4  # the signature, then IHDR (length, type, 13 bytes, CRC)
    return encoded[:end] + chunk + encoded[end:]


def write_image(path: Path, rgb: np.ndarray, alpha: np.ndarray | None = None, exif: bytes | None = None) -> None:
    """Write atomically; the suffix picks the format. ``alpha`` (H', W') is written where the format
    holds one (scaled to the picture if the model changed its size), ``exif`` (``exif_of``) where
    it is one of EXIF_SUFFIXES."""
    suffix = path.suffix.lower()
    bgr = _bgr(rgb, alpha if suffix in ALPHA_SUFFIXES else None)
    if suffix in HEIF_SUFFIXES:  # HEVC at libheif's quality 90
        import pillow_heif
        pixels = cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGBA if bgr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        heif = pillow_heif.from_bytes("RGBA" if pixels.shape[2] == 4 else "RGB", pixels.shape[1::-1], pixels.tobytes())
        with atomic_path(path) as tmp:
            heif.save(str(tmp), quality=90, **({"exif": exif} if exif else {}))
        return
    ok, buf = cv2.imencode(path.suffix, bgr)
    if not ok:
        raise OutputError(f"{path}: cannot encode an image with suffix {path.suffix!r}")
    encoded = buf.tobytes()
    if exif and suffix in EXIF_SUFFIXES:
        encoded = _with_exif(suffix, encoded, exif)
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded)
