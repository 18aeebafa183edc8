"""Procedural paired day/night city scenes: skyline, windows, street lights, moving cars, camera pan.

``render(scene, t, "day"|"night", (h, w))`` draws one frame at time t (seconds); the same scene
and time give pixel-aligned day and night images, so pairs train pix2pix and clips test video.
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass
class Scene:
    buildings: list  # (x0, width, height, window seed, base gray)
    lights: list  # x positions of street lights
    cars: list  # (x0, speed px/s, colour, lane)
    width: int  # world width in px at scale 1 (frame height 256)
    pan_speed: float  # px/s


def make_scene(seed: int, world: int = 1600) -> Scene:
    rs = np.random.RandomState(seed)
    buildings, x = [], 0
    while x < world:
        w = int(rs.randint(40, 110))
        buildings.append((x, w, int(rs.randint(60, 190)), int(rs.randint(1 << 30)), int(rs.randint(70, 170))))
        x += w + int(rs.randint(0, 12))
    lights = list(range(int(rs.randint(20, 60)), world, int(rs.randint(110, 170))))
    cars = [(float(rs.randint(0, world)), float(rs.choice([-1, 1]) * rs.randint(30, 90)),
             tuple(int(v) for v in rs.randint(30, 230, 3)), int(rs.randint(0, 2))) for _ in range(rs.randint(3, 7))]
    return Scene(buildings, lights, cars, world, float(rs.randint(8, 30)))


def render(scene: Scene, t: float, mode: str, size: tuple[int, int] = (256, 256)) -> np.ndarray:
    """RGB uint8 frame of ``scene`` at time ``t`` in ``mode`` ('day' or 'night')."""
    h, w = size
    s = h / 256.0
    night = mode == "night"
    pan = (scene.pan_speed * t) % max(1, scene.width - w / s)
    img = np.zeros((h, w, 3), np.float32)
    ys = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    top, bottom = ((10, 14, 40), (40, 40, 80)) if night else ((70, 130, 215), (180, 210, 240))
    img[:] = (np.array(top) * (1 - ys) + np.array(bottom) * ys)[:, None, :]
    ground = int(h * 0.78)
    X = lambda wx: int(round((wx - pan) * s))  # noqa: E731
    for x0, bw, bh, wseed, gray in scene.buildings:
        x1, x2 = X(x0), X(x0 + bw)
        if x2 < 0 or x1 >= w:
            continue
        y1 = ground - int(bh * s)
        col = (gray * 0.18, gray * 0.18, gray * 0.24) if night else (gray, gray * 0.97, gray * 0.92)
        cv2.rectangle(img, (x1, y1), (x2, ground), col, -1)
        wrs = np.random.RandomState(wseed)
        for wy in range(y1 + int(8 * s), ground - int(10 * s), max(2, int(14 * s))):
            for wx in range(x1 + int(6 * s), x2 - int(8 * s), max(2, int(12 * s))):
                lit = wrs.rand() < 0.45
                if night:
                    wc = (255, 214, 120) if lit else (25, 25, 35)
                else:
                    wc = (120, 150, 185) if lit else (95, 120, 150)
                cv2.rectangle(img, (wx, wy), (wx + max(1, int(6 * s)), wy + max(1, int(7 * s))), wc, -1)
    cv2.rectangle(img, (0, ground), (w, h), (28, 28, 32) if night else (105, 105, 110), -1)
    lane_y = ground + int((h - ground) * 0.5)
    for x in range(-int(pan * s) % int(40 * s + 1), w, int(40 * s) + 1):
        cv2.line(img, (x, lane_y), (x + int(18 * s), lane_y), (120, 110, 60) if night else (230, 230, 230),
                 max(1, int(2 * s)))
    glow = np.zeros((h, w), np.float32)
    for lx in scene.lights:
        x = X(lx)
        if -20 < x < w + 20:
            cv2.line(img, (x, ground), (x, ground - int(60 * s)), (40, 40, 45) if night else (60, 60, 65),
                     max(1, int(3 * s)))
            lamp = (x, ground - int(60 * s))
            cv2.circle(img, lamp, max(1, int(4 * s)), (255, 200, 110) if night else (200, 200, 190), -1)
            if night:
                cv2.circle(glow, (x, ground + int(8 * s)), int(34 * s), 1.0, -1)
    for x0, v, col, lane in scene.cars:
        cx = (x0 + v * t) % scene.width
        x = X(cx)
        cy = ground + int((8 + lane * 16) * s)
        cw, ch = int(34 * s), int(12 * s)
        if -cw < x < w:
            body = tuple(c * 0.3 for c in col) if night else col
            cv2.rectangle(img, (x, cy), (x + cw, cy + ch), body, -1)
            front = x + cw if v > 0 else x
            back = x if v > 0 else x + cw
            if night:
                cv2.circle(img, (front, cy + ch // 2), max(1, int(3 * s)), (255, 255, 220), -1)
                cv2.circle(glow, (front + int(np.sign(v) * 14 * s), cy + ch // 2), int(14 * s), 0.8, -1)
                cv2.circle(img, (back, cy + ch // 2), max(1, int(2 * s)), (220, 30, 30), -1)
    if night:
        glow = cv2.GaussianBlur(glow, (0, 0), max(1.0, 10 * s))
        img += glow[..., None] * np.array([110, 80, 30], np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_pairs(out: Path, n: int, size: int = 256, seed: int = 0, layout: str = "AB") -> Path:
    """n paired images: layout 'AB' -> out/train/i.png with day|night side by side (official);
    'folders' -> out/A/i.png (day) and out/B/i.png (night)."""
    rs = np.random.RandomState(seed)
    for i in range(n):
        sc = make_scene(int(rs.randint(1 << 30)))
        t = float(rs.uniform(0, 30))
        day, night = render(sc, t, "day", (size, size)), render(sc, t, "night", (size, size))
        if layout == "AB":
            (out / "train").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / "train" / f"{i:05d}.png"), cv2.cvtColor(np.hstack([day, night]), cv2.COLOR_RGB2BGR))
        else:
            for sub, img in (("A", day), ("B", night)):
                (out / sub).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(out / sub / f"{i:05d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return out


def write_clip(path: Path, seconds: float = 4.0, fps: int = 24, size: tuple[int, int] = (256, 448),
               mode: str = "day", seed: int = 7, noise: float = 0.0, crf: int = 18,
               pix_fmt: str = "yuv420p") -> Path:
    """A panning street clip (H.264) in day or night lighting, with optional Gaussian sensor noise
    (``noise`` = sigma as a fraction of full scale, a fresh draw per frame)."""
    import av
    sc = make_scene(seed)
    rs = np.random.RandomState(seed)
    with av.open(str(path), "w") as c:
        st = c.add_stream("libx264", rate=fps)
        st.height, st.width = size
        st.pix_fmt = pix_fmt
        st.options = {"crf": str(crf)}
        for i in range(int(seconds * fps)):
            img = render(sc, i / fps, mode, size)
            if noise:
                img = np.clip(img + rs.randn(*img.shape) * noise * 255, 0, 255).astype(np.uint8)
            for p in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    return path
