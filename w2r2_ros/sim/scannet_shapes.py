"""The scannet catalogue's objects as box parts with their real silhouettes, several styles per class.

Each builder ``(rng, small) -> Shape`` draws one instance: sizes from ranges
measured on ordinary furniture, and a style (a dining, office or arm chair; a
dining or coffee table; a wardrobe or a low cabinet; ...), so instances of one
class differ the way ScanNet's do. ``small`` asks for the version that stands
on a table or counter. Parts carry a colour slot (the object's colour or its
second colour) and, where a part is of another stuff than the object (metal
legs, a glass pane, ceramic basin), their own material. Wall objects (door,
window, picture, curtain) have their back on local -y, on the wall.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from w2r2_ros.sim.shapes import MAIN, SECOND, Shape, legs, part

BENCHMARK_CLASSES: tuple[str, ...] = (
    "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture", "counter", "desk",
    "curtain", "refrigerator", "shower curtain", "toilet", "sink", "bathtub", "other furniture",
)
"""ScanNet's 18 benchmark classes (the ScanRefer/ScanNet v2 benchmark list, its order)."""
SMALL_CLASSES: tuple[str, ...] = ("lamp", "box", "plant", "monitor", "trash can", "cup", "book")
SCANNET_CATEGORIES: tuple[str, ...] = BENCHMARK_CLASSES + SMALL_CLASSES


class _Parts:
    """Collects parts with their tone, colour slot and material, then makes a ``Shape``."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, np.ndarray]] = []
        self.tones: list[float] = []
        self.slots: list[int] = []
        self.materials: list[str] = []

    def add(self, center, size, tone: float = 1.0, slot: int = MAIN, material: str = "") -> "_Parts":
        self.parts.append(part(center, size))
        self.tones.append(tone)
        self.slots.append(slot)
        self.materials.append(material)
        return self

    def add_all(self, parts, tone: float = 1.0, slot: int = MAIN, material: str = "") -> "_Parts":
        for center, size in parts:
            self.add(tuple(center), tuple(size), tone, slot, material)
        return self

    def shape(self) -> Shape:
        return Shape(self.parts, tuple(self.tones), tuple(self.slots), tuple(self.materials))


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _style(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def chair(rng: np.random.Generator, small: bool) -> Shape:
    """Dining chair (seat, back, four legs), office chair (star base, column, seat, back) or armchair."""
    style = _style(rng, {"dining": 0.5, "office": 0.3, "arm": 0.2})
    b = _Parts()
    if style == "dining":
        w, d, seat_h, back_h, leg = _u(rng, 0.4, 0.5), _u(rng, 0.4, 0.5), _u(rng, 0.43, 0.48), _u(rng, 0.35, 0.5), 0.035
        b.add_all(legs(w, d, seat_h - 0.05, leg), 0.8, SECOND)
        b.add((0, 0, seat_h - 0.025), (w, d, 0.05))
        b.add((0, -d / 2 + 0.025, seat_h + back_h / 2), (w, 0.05, back_h), 0.95)
    elif style == "office":
        w, d, seat_h, back_h = _u(rng, 0.45, 0.55), _u(rng, 0.45, 0.52), _u(rng, 0.44, 0.52), _u(rng, 0.45, 0.6)
        foot = max(w, d) + 0.1
        b.add((0, 0, 0.03), (foot, 0.06, 0.06), 0.6, SECOND, "metal")
        b.add((0, 0, 0.03), (0.06, foot, 0.06), 0.6, SECOND, "metal")
        b.add((0, 0, 0.06 + (seat_h - 0.14) / 2), (0.05, 0.05, seat_h - 0.14), 0.6, SECOND, "metal")
        b.add((0, 0, seat_h - 0.04), (w, d, 0.08))
        b.add((0, -d / 2 + 0.04, seat_h + 0.05 + back_h / 2), (w - 0.04, 0.07, back_h), 0.95)
    else:
        w, d, seat_h = _u(rng, 0.7, 0.9), _u(rng, 0.7, 0.85), _u(rng, 0.4, 0.45)
        arm_w, back_h, back_t = 0.14, _u(rng, 0.75, 0.9), 0.16
        b.add((0, back_t / 2, seat_h / 2), (w - 2 * arm_w, d - back_t, seat_h))
        b.add((0, -d / 2 + back_t / 2, back_h / 2), (w, back_t, back_h), 0.9)
        for side in (-1, 1):
            b.add((side * (w / 2 - arm_w / 2), back_t / 2, 0.31), (arm_w, d - back_t, 0.62), 0.85)
    return b.shape()


def table(rng: np.random.Generator, small: bool) -> Shape:
    """Dining table (top on four legs), coffee table (low, with a shelf) or pedestal table (column and foot)."""
    style = _style(rng, {"dining": 0.5, "coffee": 0.3, "pedestal": 0.2})
    b = _Parts()
    if style == "dining":
        w, d, h, leg = _u(rng, 0.9, 1.8), _u(rng, 0.7, 1.0), _u(rng, 0.72, 0.78), _u(rng, 0.05, 0.08)
        b.add_all(legs(w - 0.06, d - 0.06, h - 0.04, leg), 0.75, SECOND)
        b.add((0, 0, h - 0.02), (w, d, 0.04))
    elif style == "coffee":
        w, d, h = _u(rng, 0.8, 1.3), _u(rng, 0.45, 0.7), _u(rng, 0.38, 0.48)
        b.add_all(legs(w, d, h - 0.04, 0.05), 0.75, SECOND)
        b.add((0, 0, 0.12), (w - 0.1, d - 0.1, 0.03), 0.85)
        b.add((0, 0, h - 0.02), (w, d, 0.04))
    else:
        side, h = _u(rng, 0.6, 0.95), _u(rng, 0.72, 0.76)
        b.add((0, 0, 0.02), (side * 0.6, side * 0.6, 0.04), 0.6, SECOND, "metal")
        b.add((0, 0, 0.04 + (h - 0.08) / 2), (0.08, 0.08, h - 0.08), 0.6, SECOND, "metal")
        b.add((0, 0, h - 0.02), (side, side, 0.04))
    return b.shape()


def _drawer_fronts(b: _Parts, x: float, width: float, y_front: float, z0: float, z1: float, n: int) -> None:
    """``n`` drawer fronts stacked between heights z0 and z1 on the front plane y_front, each with a handle."""
    step = (z1 - z0) / n
    for k in range(n):
        zc = z0 + (k + 0.5) * step
        b.add((x, y_front + 0.01, zc), (width - 0.02, 0.02, step - 0.02), 0.92)
        b.add((x, y_front + 0.03, zc + step * 0.25), (min(0.12, width / 3), 0.02, 0.02), 0.5, SECOND, "metal")


def desk(rng: np.random.Generator, small: bool) -> Shape:
    """A top on a drawer pedestal at one side and two legs (or a panel) at the other."""
    w, d, h = _u(rng, 1.0, 1.6), _u(rng, 0.55, 0.8), _u(rng, 0.72, 0.77)
    ped_w = _u(rng, 0.35, 0.45)
    side = -1 if rng.random() < 0.5 else 1
    b = _Parts()
    b.add((0, 0, h - 0.015), (w, d, 0.03))
    px = side * (w / 2 - ped_w / 2)
    b.add((px, -0.01, (h - 0.03) / 2), (ped_w, d - 0.04, h - 0.03), 0.85)
    _drawer_fronts(b, px, ped_w, d / 2 - 0.03, 0.05, h - 0.05, int(rng.integers(2, 4)))
    lx = -side * (w / 2 - 0.03)
    if rng.random() < 0.5:
        b.add((lx, 0, (h - 0.03) / 2), (0.04, d - 0.04, h - 0.03), 0.8)  # panel leg
    else:
        for sy in (-1, 1):
            b.add((lx, sy * (d / 2 - 0.04), (h - 0.03) / 2), (0.05, 0.05, h - 0.03), 0.6, SECOND, "metal")
    return b.shape()


def _doors(b: _Parts, width: float, y_front: float, z0: float, z1: float, n: int) -> None:
    """``n`` door fronts side by side on the front plane, each with a vertical handle near its free edge."""
    step = width / n
    for k in range(n):
        xc = -width / 2 + (k + 0.5) * step
        b.add((xc, y_front + 0.01, (z0 + z1) / 2), (step - 0.015, 0.02, z1 - z0), 0.93)
        hx = xc + (step / 2 - 0.06) * (1 if k % 2 == 0 else -1)
        b.add((hx, y_front + 0.03, z0 + 0.7 * (z1 - z0)), (0.02, 0.02, min(0.14, (z1 - z0) / 3)), 0.5, SECOND, "metal")


def cabinet(rng: np.random.Generator, small: bool) -> Shape:
    """A wardrobe (tall, two doors) or a low cabinet (doors or drawers), on a plinth, with a top."""
    tall = rng.random() < 0.35
    w, d = _u(rng, 0.6, 1.4) if tall else _u(rng, 0.5, 1.2), _u(rng, 0.45, 0.6) if tall else _u(rng, 0.35, 0.5)
    h = _u(rng, 1.7, 2.1) if tall else _u(rng, 0.6, 1.1)
    b = _Parts()
    b.add((0, -0.015, 0.04), (w - 0.06, d - 0.09, 0.08), 0.6)
    b.add((0, -0.015, 0.08 + (h - 0.11) / 2), (w, d - 0.03, h - 0.11))
    b.add((0, 0, h - 0.015), (w, d, 0.03), 0.85)
    if not tall and rng.random() < 0.4:
        _drawer_fronts(b, 0.0, w, d / 2 - 0.03, 0.1, h - 0.04, int(rng.integers(2, 5)))
    else:
        _doors(b, w, d / 2 - 0.03, 0.1, h - 0.04, 2 if w > 0.7 else 1)
    return b.shape()


def counter(rng: np.random.Generator, small: bool) -> Shape:
    """A kitchen run: base cabinets with doors and handles on a plinth under a worktop of the second colour."""
    w, d, h = _u(rng, 1.2, 2.6), _u(rng, 0.58, 0.65), _u(rng, 0.86, 0.92)
    b = _Parts()
    b.add((0, -0.04, 0.05), (w - 0.04, d - 0.1, 0.1), 0.55)
    b.add((0, -0.02, 0.1 + (h - 0.14) / 2), (w - 0.02, d - 0.06, h - 0.14))
    b.add((0, 0, h - 0.02), (w, d, 0.04), 1.0, SECOND)
    _doors(b, w - 0.02, d / 2 - 0.05, 0.12, h - 0.06, max(2, int(round(w / 0.6))))
    return b.shape()


def refrigerator(rng: np.random.Generator, small: bool) -> Shape:
    """A tall body with a freezer door and a fridge door (gap between), each with a long handle."""
    w, d, h = _u(rng, 0.6, 0.9), _u(rng, 0.62, 0.75), _u(rng, 1.6, 1.95)
    split = h * _u(rng, 0.3, 0.4)
    top_freezer = rng.random() < 0.5
    b = _Parts()
    b.add((0, -0.03, h / 2), (w, d - 0.06, h))
    lower, upper = (h - split, split) if top_freezer else (split, h - split)
    for z0, height in ((0.02, lower - 0.03), (lower + 0.01, upper - 0.03)):
        b.add((0, d / 2 - 0.03, z0 + height / 2), (w - 0.01, 0.05, height), 0.95)
        b.add((w / 2 - 0.07, d / 2 + 0.02, z0 + height / 2), (0.025, 0.04, min(0.5, 0.6 * height)), 0.5, SECOND, "metal")
    return b.shape()


def bookshelf(rng: np.random.Generator, small: bool) -> Shape:
    """Two sides, a back, shelves, and rows of books (blocks of the second colour) on most shelves."""
    w, d, h = _u(rng, 0.6, 1.2), _u(rng, 0.28, 0.4), _u(rng, 0.9, 2.0)
    n = max(2, int(round(h / 0.38)))
    t = 0.025
    b = _Parts()
    for side in (-1, 1):
        b.add((side * (w / 2 - t / 2), 0, h / 2), (t, d, h), 0.9)
    b.add((0, -d / 2 + 0.01, h / 2), (w - 2 * t, 0.02, h), 0.7)
    inner = w - 2 * t
    step = (h - t) / n
    for k in range(n + 1):
        b.add((0, 0.01, k * step + t / 2), (inner, d - 0.02, t))
        if k == n or rng.random() < 0.2:
            continue
        x = -inner / 2 + 0.01
        while x < inner / 2 - 0.1:  # book rows: runs of 8-30 cm of books of one height
            run = min(_u(rng, 0.08, 0.3), inner / 2 - 0.01 - x)
            book_h = min(_u(rng, 0.17, 0.3), step - t - 0.03)
            bd = min(_u(rng, 0.15, 0.25), d - 0.05)
            b.add((x + run / 2, -d / 2 + 0.02 + bd / 2, (k * step + t) + book_h / 2), (run, bd, book_h),
                  _u(rng, 0.7, 1.1), SECOND, "paper")
            x += run + _u(rng, 0.01, 0.12)
    return b.shape()


def sofa(rng: np.random.Generator, small: bool) -> Shape:
    """A base, a back, two arms, two or three seat cushions and back cushions."""
    seats = int(rng.integers(2, 4))
    w, d = _u(rng, 0.65, 0.8) * seats + 0.4, _u(rng, 0.85, 1.0)
    base_h, cushion_h, back_h, arm_w, arm_h, back_t = 0.25, _u(rng, 0.12, 0.18), _u(rng, 0.75, 0.9), _u(rng, 0.15, 0.25), _u(rng, 0.55, 0.68), 0.18
    b = _Parts()
    inner = w - 2 * arm_w
    b.add((0, back_t / 2, base_h / 2), (inner, d - back_t, base_h), 0.85)
    b.add((0, -d / 2 + back_t / 2, back_h / 2), (w, back_t, back_h), 0.9)
    for side in (-1, 1):
        b.add((side * (w / 2 - arm_w / 2), back_t / 2, arm_h / 2), (arm_w, d - back_t, arm_h), 0.88)
    step = inner / seats
    for k in range(seats):
        xc = -inner / 2 + (k + 0.5) * step
        b.add((xc, back_t / 2 + 0.05, base_h + cushion_h / 2), (step - 0.02, d - back_t - 0.1, cushion_h), 1.0)
        b.add((xc, -d / 2 + back_t + 0.07, base_h + cushion_h + 0.2), (step - 0.03, 0.14, 0.36), 0.97)
    return b.shape()


def bed(rng: np.random.Generator, small: bool) -> Shape:
    """A frame, a mattress under a blanket of the second colour, a headboard, pillows, sometimes a footboard."""
    w, length = _u(rng, 0.95, 1.9), _u(rng, 1.95, 2.15)
    frame_h, mattress_h, head_h, head_t = _u(rng, 0.2, 0.35), _u(rng, 0.18, 0.28), _u(rng, 0.85, 1.2), 0.07
    b = _Parts()
    b.add((0, head_t / 2, frame_h / 2), (w, length - head_t, frame_h), 0.8)
    top = frame_h + mattress_h
    b.add((0, head_t / 2, frame_h + mattress_h / 2), (w - 0.06, length - head_t - 0.06, mattress_h), 1.0, MAIN, "fabric")
    blanket = (length - head_t) * 0.65
    b.add((0, length / 2 - 0.02 - blanket / 2, top + 0.02), (w - 0.02, blanket, 0.04), 1.0, SECOND, "fabric")
    b.add((0, -length / 2 + head_t / 2, head_h / 2), (w, head_t, head_h), 0.75)
    pillows = 2 if w > 1.3 else 1
    pw = (w - 0.2) / pillows
    for k in range(pillows):
        b.add((-w / 2 + 0.1 + (k + 0.5) * pw, -length / 2 + head_t + 0.25, top + 0.06), (pw - 0.06, 0.38, 0.12), 1.1, MAIN, "fabric")
    if rng.random() < 0.4:
        b.add((0, length / 2 - 0.03, (frame_h + 0.2) / 2), (w, 0.06, frame_h + 0.2), 0.75)
    return b.shape()


def lamp(rng: np.random.Generator, small: bool) -> Shape:
    """Base, pole and shade: a floor lamp, or a desk lamp on a table."""
    if small:
        base, pole_h, shade, shade_h = _u(rng, 0.12, 0.18), _u(rng, 0.2, 0.35), _u(rng, 0.15, 0.25), _u(rng, 0.12, 0.18)
    else:
        base, pole_h, shade, shade_h = _u(rng, 0.25, 0.35), _u(rng, 1.1, 1.5), _u(rng, 0.3, 0.45), _u(rng, 0.25, 0.35)
    b = _Parts()
    b.add((0, 0, 0.015), (base, base, 0.03), 0.6, SECOND, "metal")
    b.add((0, 0, 0.03 + pole_h / 2), (0.03, 0.03, pole_h), 0.6, SECOND, "metal")
    b.add((0, 0, 0.03 + pole_h + shade_h / 2), (shade, shade, shade_h), 1.1, MAIN, "fabric")
    return b.shape()


def toilet(rng: np.random.Generator, small: bool) -> Shape:
    """A pedestal, a bowl with its seat, and a tank at the back."""
    bowl_w, bowl_d, tank_h = _u(rng, 0.36, 0.42), _u(rng, 0.5, 0.6), _u(rng, 0.3, 0.42)
    d = bowl_d + 0.18
    b = _Parts()
    b.add((0, 0.05, 0.13), (bowl_w * 0.6, bowl_d * 0.6, 0.26), 0.85)
    b.add((0, -d / 2 + 0.18 + bowl_d / 2, 0.33), (bowl_w, bowl_d, 0.14))
    b.add((0, -d / 2 + 0.18 + bowl_d / 2, 0.415), (bowl_w - 0.02, bowl_d - 0.04, 0.03), 1.05, SECOND, "plastic")
    b.add((0, -d / 2 + 0.09, 0.4 + tank_h / 2), (bowl_w + 0.06, 0.18, tank_h), 0.95)
    return b.shape()


def _basin(b: _Parts, w: float, d: float, z: float, depth: float) -> None:
    """A basin whose top is at height z: four rim walls around a hollow, its floor ``depth`` lower, and a tap."""
    rim = 0.05
    b.add((0, 0, z - depth + 0.01), (w, d, 0.02), 0.8, MAIN, "ceramic")
    for sx in (-1, 1):
        b.add((sx * (w / 2 - rim / 2), 0, z - depth / 2), (rim, d, depth), 1.0, MAIN, "ceramic")
    for sy in (-1, 1):
        b.add((0, sy * (d / 2 - rim / 2), z - depth / 2), (w - 2 * rim, rim, depth), 1.0, MAIN, "ceramic")
    b.add((0, -d / 2 + 0.025, z + 0.08), (0.03, 0.03, 0.16), 0.6, SECOND, "metal")
    b.add((0, -d / 2 + 0.07, z + 0.15), (0.03, 0.1, 0.025), 0.6, SECOND, "metal")


def sink(rng: np.random.Generator, small: bool) -> Shape:
    """A basin with a tap: on its own vanity cabinet (doors and handles), or alone on a counter (``small``)."""
    w, d = _u(rng, 0.4, 0.6), _u(rng, 0.35, 0.45)
    b = _Parts()
    if small:
        _basin(b, w, d, 0.16, 0.16)
        return b.shape()
    cw, cd, h = w + _u(rng, 0.1, 0.4), d + 0.1, _u(rng, 0.8, 0.88)
    b.add((0, 0, (h - 0.14) / 2), (cw, cd, h - 0.14), 0.9, SECOND)
    _doors(b, cw, cd / 2 - 0.02, 0.05, h - 0.18, 2 if cw > 0.6 else 1)
    b.add((0, 0, h - 0.15), (cw, cd, 0.02), 0.85, SECOND)
    _basin(b, w, d, h, 0.14)
    return b.shape()


def bathtub(rng: np.random.Generator, small: bool) -> Shape:
    """A floor slab and four rim walls around the hollow."""
    length, w, h = _u(rng, 1.4, 1.8), _u(rng, 0.7, 0.85), _u(rng, 0.5, 0.6)
    rim = _u(rng, 0.07, 0.12)
    b = _Parts()
    b.add((0, 0, 0.06), (length, w, 0.12), 0.8)
    for sy in (-1, 1):
        b.add((0, sy * (w / 2 - rim / 2), h / 2), (length, rim, h))
    for sx in (-1, 1):
        b.add((sx * (length / 2 - rim / 2), 0, h / 2), (rim, w - 2 * rim, h), 0.95)
    return b.shape()


def other_furniture(rng: np.random.Generator, small: bool) -> Shape:
    """A stool (seat on legs), an ottoman (a padded block on feet) or a side table (top, drawer body, legs)."""
    style = _style(rng, {"stool": 0.35, "ottoman": 0.3, "side table": 0.35})
    b = _Parts()
    if style == "stool":
        side, h = _u(rng, 0.3, 0.4), _u(rng, 0.45, 0.75)
        b.add_all(legs(side, side, h - 0.04, 0.03), 0.7, SECOND)
        b.add((0, 0, h * 0.35), (side - 0.04, side - 0.04, 0.02), 0.7, SECOND)
        b.add((0, 0, h - 0.02), (side, side, 0.04))
    elif style == "ottoman":
        w, d, h = _u(rng, 0.45, 0.9), _u(rng, 0.4, 0.6), _u(rng, 0.35, 0.45)
        b.add_all(legs(w - 0.06, d - 0.06, 0.06, 0.04), 0.5, SECOND, "wood")
        b.add((0, 0, 0.06 + (h - 0.06) / 2), (w, d, h - 0.06), 1.0, MAIN, "fabric")
    else:
        w, d, h = _u(rng, 0.4, 0.55), _u(rng, 0.35, 0.45), _u(rng, 0.5, 0.65)
        b.add_all(legs(w, d, h - 0.03, 0.04), 0.75)
        b.add((0, 0, h - 0.2), (w - 0.04, d - 0.04, 0.16), 0.9)
        b.add((0, d / 2 - 0.01, h - 0.2), (w - 0.08, 0.02, 0.12), 0.95, SECOND)
        b.add((0, 0, h - 0.015), (w, d, 0.03))
    return b.shape()


def box(rng: np.random.Generator, small: bool) -> Shape:
    lo, hi = (0.12, 0.3) if small else (0.25, 0.6)
    w, d, h = _u(rng, lo, hi), _u(rng, lo, hi), _u(rng, lo, hi)
    return _Parts().add((0, 0, (h - 0.02) / 2), (w - 0.02, d - 0.02, h - 0.02)).add((0, 0, h - 0.01), (w, d, 0.02), 0.85).shape()


def plant(rng: np.random.Generator, small: bool) -> Shape:
    """A pot of the second colour and foliage in two or three tiers."""
    scale = 0.45 if small else 1.0
    pot, pot_h = _u(rng, 0.22, 0.35) * scale, _u(rng, 0.22, 0.35) * scale
    b = _Parts().add((0, 0, pot_h / 2), (pot, pot, pot_h), 0.8, SECOND, "ceramic")
    z, width = pot_h, _u(rng, 0.35, 0.6) * scale
    for _ in range(int(rng.integers(2, 4))):
        tier = _u(rng, 0.2, 0.4) * scale
        b.add((0, 0, z + tier / 2), (width, width, tier), _u(rng, 0.85, 1.1), MAIN, "foliage")
        z, width = z + tier, width * _u(rng, 0.55, 0.85)
    return b.shape()


def monitor(rng: np.random.Generator, small: bool) -> Shape:
    """A foot, a neck and a screen (dark glass in a frame of the object's colour)."""
    w, h = _u(rng, 0.45, 0.75), _u(rng, 0.28, 0.45)
    neck = _u(rng, 0.08, 0.15)
    b = _Parts()
    b.add((0, 0, 0.01), (0.22, 0.16, 0.02), 0.6)
    b.add((0, -0.03, 0.02 + neck / 2), (0.04, 0.03, neck), 0.6)
    b.add((0, 0, 0.02 + neck + h / 2), (w, 0.04, h))
    b.add((0, 0.025, 0.02 + neck + h / 2), (w - 0.03, 0.01, h - 0.03), 0.25, SECOND, "glass")
    return b.shape()


def trash_can(rng: np.random.Generator, small: bool) -> Shape:
    w, h = _u(rng, 0.22, 0.4), _u(rng, 0.3, 0.7)
    return _Parts().add((0, 0, (h - 0.03) / 2), (w, w, h - 0.03)).add((0, 0, h - 0.015), (w + 0.03, w + 0.03, 0.03), 0.8).shape()


def cup(rng: np.random.Generator, small: bool) -> Shape:
    side, h = _u(rng, 0.07, 0.1), _u(rng, 0.08, 0.12)
    return _Parts().add((0, 0, h / 2), (side, side, h)).add((side / 2 + 0.012, 0, h * 0.55), (0.024, 0.015, h * 0.6), 0.9).shape()


def book(rng: np.random.Generator, small: bool) -> Shape:
    """A book lying flat: covers of the object's colour around white pages."""
    w, d, t = _u(rng, 0.14, 0.24), _u(rng, 0.2, 0.3), _u(rng, 0.02, 0.05)
    b = _Parts().add((0, 0, t / 2), (w, d, t))
    b.add((0.005, 0, t / 2), (w - 0.0, d - 0.02, t - 0.008), 1.0, SECOND, "paper")
    return b.shape()


SHAPES: dict[str, Callable[[np.random.Generator, bool], Shape]] = {
    "cabinet": cabinet, "bed": bed, "chair": chair, "sofa": sofa, "table": table, "bookshelf": bookshelf,
    "counter": counter, "desk": desk, "refrigerator": refrigerator, "toilet": toilet, "sink": sink,
    "bathtub": bathtub, "other furniture": other_furniture, "lamp": lamp, "box": box, "plant": plant,
    "monitor": monitor, "trash can": trash_can, "cup": cup, "book": book,
}
"""Builders of the classes that stand on the floor or on a support (wall objects are built by ``wall_shape``)."""


# ---- wall objects: back on the wall (local -y), built for a height in the room ----

def door(rng: np.random.Generator, room_height: float) -> tuple[Shape, float]:
    """A leaf in a frame (jambs and lintel standing 6 cm out of the wall) with a handle; returns (shape, base z)."""
    w, h = _u(rng, 0.8, 0.95), min(_u(rng, 2.0, 2.1), room_height - 0.15)
    b = _Parts()
    b.add((0, 0.02, h / 2), (w, 0.04, h))
    for side in (-1, 1):
        b.add((side * (w / 2 + 0.035), 0.03, (h + 0.06) / 2), (0.07, 0.06, h + 0.06), 1.0, SECOND)
    b.add((0, 0.03, h + 0.03), (w, 0.06, 0.06), 1.0, SECOND)
    b.add((w / 2 - 0.1, 0.07, 1.0), (0.12, 0.04, 0.03), 0.5, MAIN, "metal")
    return b.shape(), 0.0


def window(rng: np.random.Generator, room_height: float) -> tuple[Shape, float]:
    """A glass pane in a frame that stands 6 cm out of the wall, sometimes a mullion, and a sill."""
    w, h = _u(rng, 0.7, 1.6), _u(rng, 0.8, 1.3)
    bottom = _u(rng, 0.75, 1.0)
    h = min(h, room_height - 0.2 - bottom)
    bar = 0.05
    b = _Parts()
    b.add((0, 0.015, h / 2), (w - 2 * bar, 0.03, h - 2 * bar), 1.0, SECOND, "glass")
    for side in (-1, 1):
        b.add((side * (w / 2 - bar / 2), 0.03, h / 2), (bar, 0.06, h))
        b.add((0, 0.03, h / 2 + side * (h / 2 - bar / 2)), (w - 2 * bar, 0.06, bar))
    if w > 1.0 and rng.random() < 0.6:
        b.add((0, 0.03, h / 2), (0.04, 0.06, h - 2 * bar))
    b.add((0, 0.075, -0.02), (w + 0.1, 0.15, 0.04), 0.9)
    return b.shape(), bottom - 0.04


def picture(rng: np.random.Generator, room_height: float) -> tuple[Shape, float]:
    """A canvas of the second colour in a 4 cm deep frame hung between 1.0 and 2.0 m."""
    w, h = _u(rng, 0.3, 1.1), _u(rng, 0.25, 0.8)
    centre = _u(rng, 1.3, 1.65)
    frame = _u(rng, 0.03, 0.06)
    b = _Parts()
    b.add((0, 0.0125, h / 2), (w - 2 * frame, 0.025, h - 2 * frame), 1.0, SECOND, "paint")
    for side in (-1, 1):
        b.add((side * (w / 2 - frame / 2), 0.02, h / 2), (frame, 0.04, h))
        b.add((0, 0.02, h / 2 + side * (h / 2 - frame / 2)), (w - 2 * frame, 0.04, frame))
    return b.shape(), min(centre - h / 2, room_height - 0.1 - h)


def curtain(rng: np.random.Generator, width: float, top: float, bottom: float) -> Shape:
    """A curtain panel hanging from ``top`` to ``bottom``: three to five folds that stand 6-14 cm out of the wall."""
    folds = int(rng.integers(3, 6))
    step = width / folds
    h = top - bottom
    b = _Parts()
    for k in range(folds):
        depth = 0.06 if k % 2 else _u(rng, 0.1, 0.14)
        b.add((-width / 2 + (k + 0.5) * step, depth / 2, h / 2), (step, depth, h), 1.0 if k % 2 else 0.9, MAIN, "fabric")
    return b.shape()


def shower_curtain(rng: np.random.Generator, length: float, top: float, bottom: float) -> Shape:
    """A thin folded panel hanging along a bathtub's open side, from its rod at ``top`` down to ``bottom``."""
    folds = max(3, int(length / 0.25))
    step = length / folds
    h = top - bottom
    b = _Parts()
    for k in range(folds):
        depth = 0.02 if k % 2 else 0.05
        b.add((-length / 2 + (k + 0.5) * step, 0.025 - depth / 2 + 0.0, h / 2), (step, depth, h), 1.0 if k % 2 else 0.9, MAIN, "plastic")
    return b.shape()
