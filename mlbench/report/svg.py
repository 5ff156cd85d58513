"""Inline SVG plots drawn by hand: no plotting library, no fonts or files to fetch.

Colours are the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), distinguishable
with the common colour-vision deficiencies; series also differ by marker shape where they share
a plot, so the plots read in greyscale print too.
"""

from __future__ import annotations

import math
from html import escape
from typing import Iterable, Sequence

import numpy as np

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
MARKERS = ("circle", "square", "diamond", "triangle")
PUBLISHED_COLOUR = "#000000"
FONT = 12


def colour(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def _f(x: float) -> str:
    return f"{x:.1f}"


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = FONT, weight: str = "normal",
          rotate: float | None = None, fill: str = "#222") -> str:
    transform = f' transform="rotate({rotate} {_f(x)} {_f(y)})"' if rotate is not None else ""
    return (f'<text x="{_f(x)}" y="{_f(y)}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
            f'fill="{fill}"{transform}>{escape(text)}</text>')


def marker(shape: str, x: float, y: float, fill: str, size: float = 4.0, tip: str = "", hollow: bool = False) -> str:
    title = f"<title>{escape(tip)}</title>" if tip else ""
    paint = f'fill="white" stroke="{fill}" stroke-width="1.5"' if hollow else f'fill="{fill}"'
    if shape == "square":
        body = f'<rect x="{_f(x - size)}" y="{_f(y - size)}" width="{_f(2 * size)}" height="{_f(2 * size)}" {paint}>'
        return body + title + "</rect>"
    if shape == "diamond":
        pts = f"{_f(x)},{_f(y - size * 1.3)} {_f(x + size * 1.3)},{_f(y)} {_f(x)},{_f(y + size * 1.3)} {_f(x - size * 1.3)},{_f(y)}"
        return f'<polygon points="{pts}" {paint}>{title}</polygon>'
    if shape == "triangle":
        pts = f"{_f(x)},{_f(y - size * 1.2)} {_f(x + size * 1.2)},{_f(y + size)} {_f(x - size * 1.2)},{_f(y + size)}"
        return f'<polygon points="{pts}" {paint}>{title}</polygon>'
    return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(size)}" {paint}>{title}</circle>'


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick positions covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    start = math.ceil(low / step - 1e-9) * step
    ticks = []
    t = start
    while t <= high + 1e-9 * step:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _svg(width: float, height: float, title: str, body: Iterable[str]) -> str:
    return (f'<svg class="plot" viewBox="0 0 {_f(width)} {_f(height)}" width="{_f(width)}" role="img" '
            f'aria-label="{escape(title)}" font-family="system-ui, sans-serif"><title>{escape(title)}</title>'
            + "".join(body) + "</svg>")


def _legend(items: Sequence[tuple[str, str, str, bool]], x: float, y: float) -> list[str]:
    """(name, colour, marker shape, hollow) rows from (x, y) downwards."""
    out = []
    for i, (name, fill, shape, hollow) in enumerate(items):
        yy = y + i * 16
        out.append(marker(shape, x + 5, yy - 4, fill, hollow=hollow))
        out.append(_text(x + 14, yy, name, size=11))
    return out


def forest(rows: Sequence[dict], *, title: str, x_label: str, source: str, x_range: tuple[float, float] = (0.0, 1.0),
           reference: float | None = None, published_name: str | None = None, run_name: str = "run") -> str:
    """One row per label: the value as a dot with its CI whisker, the published value as a hollow diamond.

    ``rows``: label, note (shown after the label), value, ci_low, ci_high, published (NaN: none).
    """
    left, right, top, row_h = 300, 30, 58, 17
    plot_w = 560
    height = top + row_h * max(len(rows), 1) + 58
    width = left + plot_w + right
    lo, hi = x_range

    def sx(v: float) -> float:
        return left + (min(max(v, lo), hi) - lo) / (hi - lo) * plot_w

    body = [_text(10, 18, title, size=13, weight="bold")]
    legend = [(f"{run_name} (95% CI)", colour(0), "circle", False)]
    if published_name:
        legend.append((published_name, PUBLISHED_COLOUR, "diamond", True))
    body += _legend(legend, left, 36) if len(legend) == 1 else (
        _legend(legend[:1], left, 38) + _legend(legend[1:], left + 220, 38))
    bottom = top + row_h * len(rows)
    for t in nice_ticks(lo, hi):
        body.append(f'<line x1="{_f(sx(t))}" x2="{_f(sx(t))}" y1="{top - 4}" y2="{_f(bottom)}" stroke="#ddd"/>')
        body.append(_text(sx(t), bottom + 14, f"{t:g}", anchor="middle", size=11))
    if reference is not None and lo <= reference <= hi:
        body.append(f'<line x1="{_f(sx(reference))}" x2="{_f(sx(reference))}" y1="{top - 4}" y2="{_f(bottom)}" '
                    f'stroke="#666" stroke-dasharray="3 3"/>')
    for i, r in enumerate(rows):
        y = top + row_h * i + row_h / 2
        if i % 2:
            body.append(f'<rect x="0" y="{_f(y - row_h / 2)}" width="{width}" height="{row_h}" fill="#f4f4f4"/>')
        name = r["label"] if len(r["label"]) <= 30 else r["label"][:29] + "…"
        body.append(_text(left - 8 - 70, y + 4, name, anchor="end", size=11))
        body.append(_text(left - 8, y + 4, r.get("note", ""), anchor="end", size=10, fill="#555"))
        value, low, high, published = (r.get(k, float("nan")) for k in ("value", "ci_low", "ci_high", "published"))
        if _ok(low) and _ok(high):
            body.append(f'<line x1="{_f(sx(low))}" x2="{_f(sx(high))}" y1="{_f(y)}" y2="{_f(y)}" '
                        f'stroke="{colour(0)}" stroke-width="1.6"/>')
        if _ok(value):
            tip = f"{r['label']}: {value:.4f}" + (f" [{low:.4f}, {high:.4f}]" if _ok(low) and _ok(high) else "")
            body.append(marker("circle", sx(value), y, colour(0), 3.6, tip))
        else:
            body.append(_text(left + 6, y + 4, "undefined (no positive in the test split)", size=10, fill="#777"))
        if _ok(published):
            body.append(marker("diamond", sx(published), y, PUBLISHED_COLOUR, 3.6, f"published: {published:.4f}",
                               hollow=True))
    body.append(_text(left + plot_w / 2, bottom + 32, x_label, anchor="middle"))
    body.append(_text(10, height - 8, f"Source: {source}", size=10, fill="#555"))
    return _svg(width, height, title, body)


def _ok(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def trend(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float] | None:
    """Least-squares (slope, intercept) of y on x over the finite pairs; None with fewer than 2."""
    x, y = np.asarray(xs, float), np.asarray(ys, float)
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 2 or np.ptp(x[keep]) == 0:
        return None
    slope, intercept = np.polyfit(x[keep], y[keep], 1)
    return float(slope), float(intercept)


def scatter_log_x(series: Sequence[dict], *, title: str, x_label: str, y_label: str, source: str,
                  y_range: tuple[float, float] = (0.0, 1.0)) -> str:
    """Points against log10(x) with one least-squares trend line per series.

    ``series``: name, x (positive values; non-positive ones are left out), y, labels (tooltips).
    """
    left, top, plot_w, plot_h = 64, 40, 560, 300
    legend_w = 220
    width, height = left + plot_w + legend_w, top + plot_h + 70
    all_x = [math.log10(x) for s in series for x in s["x"] if _ok(x) and x > 0]
    if not all_x:
        all_x = [-2.0, 0.0]
    lo_x, hi_x = math.floor(min(all_x)), max(math.ceil(max(all_x)), math.floor(min(all_x)) + 1)
    lo_y, hi_y = y_range

    def sx(v: float) -> float:
        return left + (v - lo_x) / (hi_x - lo_x) * plot_w

    def sy(v: float) -> float:
        return top + plot_h - (min(max(v, lo_y), hi_y) - lo_y) / (hi_y - lo_y) * plot_h

    body = [_text(10, 18, title, size=13, weight="bold"),
            f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>']
    for e in range(lo_x, hi_x + 1):
        body.append(f'<line x1="{_f(sx(e))}" x2="{_f(sx(e))}" y1="{top}" y2="{top + plot_h}" stroke="#e4e4e4"/>')
        body.append(_text(sx(e), top + plot_h + 16, f"{100 * 10 ** e:g}%", anchor="middle", size=11))
    for t in nice_ticks(lo_y, hi_y):
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{_f(sy(t))}" y2="{_f(sy(t))}" stroke="#e4e4e4"/>')
        body.append(_text(left - 6, sy(t) + 4, f"{t:g}", anchor="end", size=11))
    legend = []
    for i, s in enumerate(series):
        fill, shape = colour(i), MARKERS[i % len(MARKERS)]
        xs = [math.log10(x) if _ok(x) and x > 0 else float("nan") for x in s["x"]]
        for x, y, name in zip(xs, s["y"], s.get("labels", [""] * len(xs))):
            if _ok(x) and _ok(y):
                body.append(marker(shape, sx(x), sy(y), fill, 3.2, f"{s['name']} · {name}: {y:.4f}"))
        fit = trend(xs, s["y"])
        text = s["name"]
        if fit:
            slope, intercept = fit
            body.append(f'<line x1="{_f(sx(lo_x))}" x2="{_f(sx(hi_x))}" y1="{_f(sy(slope * lo_x + intercept))}" '
                        f'y2="{_f(sy(slope * hi_x + intercept))}" stroke="{fill}" stroke-width="1.8"/>')
            text += f" (slope {slope:+.3f}/decade)"
        legend.append((text, fill, shape, False))
    body += _legend(legend, left + plot_w + 12, top + 10)
    body.append(_text(left + plot_w / 2, top + plot_h + 36, x_label, anchor="middle"))
    body.append(_text(16, top + plot_h / 2, y_label, anchor="middle", rotate=-90))
    body.append(_text(10, height - 8, f"Source: {source}", size=10, fill="#555"))
    return _svg(width, height, title, body)


def lines(series: Sequence[dict], *, title: str, x_label: str, y_label: str, source: str,
          mark_x: float | None = None, mark_name: str = "") -> str:
    """Line chart; ``series``: name, x, y, dashed. A vertical line marks ``mark_x``."""
    left, top, plot_w, plot_h = 64, 40, 380, 200
    width, height = left + plot_w + 190, top + plot_h + 70
    xs = [x for s in series for x in s["x"] if _ok(x)] or [0.0, 1.0]
    ys = [y for s in series for y in s["y"] if _ok(y)] or [0.0, 1.0]
    lo_x, hi_x = min(xs), max(max(xs), min(xs) + 1)
    pad = (max(ys) - min(ys)) * 0.08 or abs(max(ys)) * 0.1 or 1.0
    lo_y, hi_y = min(ys) - pad, max(ys) + pad

    def sx(v: float) -> float:
        return left + (v - lo_x) / (hi_x - lo_x) * plot_w

    def sy(v: float) -> float:
        return top + plot_h - (v - lo_y) / (hi_y - lo_y) * plot_h

    body = [_text(10, 18, title, size=13, weight="bold"),
            f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>']
    for t in nice_ticks(lo_x, hi_x, 6):
        if float(t).is_integer():
            body.append(_text(sx(t), top + plot_h + 16, f"{t:g}", anchor="middle", size=11))
    for t in nice_ticks(lo_y, hi_y, 5):
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{_f(sy(t))}" y2="{_f(sy(t))}" stroke="#e4e4e4"/>')
        body.append(_text(left - 6, sy(t) + 4, f"{t:g}", anchor="end", size=11))
    legend = []
    if mark_x is not None:
        body.append(f'<line x1="{_f(sx(mark_x))}" x2="{_f(sx(mark_x))}" y1="{top}" y2="{top + plot_h}" '
                    f'stroke="#555" stroke-dasharray="4 3"/>')
        right_half = sx(mark_x) > left + plot_w / 2
        body.append(_text(sx(mark_x) + (-4 if right_half else 4), top + 12, mark_name, size=10, fill="#333",
                          anchor="end" if right_half else "start"))
    for i, s in enumerate(series):
        fill, shape = colour(i), MARKERS[i % len(MARKERS)]
        pts = [(sx(x), sy(y)) for x, y in zip(s["x"], s["y"]) if _ok(x) and _ok(y)]
        if len(pts) > 1:
            dash = ' stroke-dasharray="6 3"' if s.get("dashed") else ""
            body.append(f'<polyline fill="none" stroke="{fill}" stroke-width="1.8"{dash} points="'
                        + " ".join(f"{_f(a)},{_f(b)}" for a, b in pts) + '"/>')
        for (a, b), x, y in zip(pts, s["x"], s["y"]):
            body.append(marker(shape, a, b, fill, 3.0, f"{s['name']}, epoch {x:g}: {y:.4f}"))
        legend.append((s["name"], fill, shape, False))
    body += _legend(legend, left + plot_w + 12, top + 10)
    body.append(_text(left + plot_w / 2, top + plot_h + 36, x_label, anchor="middle"))
    body.append(_text(16, top + plot_h / 2, y_label, anchor="middle", rotate=-90))
    body.append(_text(10, height - 8, f"Source: {source}", size=10, fill="#555"))
    return _svg(width, height, title, body)


VERDICT_STYLE = {"helps": (OKABE_ITO[2], "circle"), "hurts": (OKABE_ITO[3], "square"),
                 "no evidence": ("#777777", "diamond")}


def differences(rows: Sequence[dict], *, title: str, x_label: str, source: str) -> str:
    """Paired differences with CIs around a zero line; ``rows``: label, note, difference, ci_low,
    ci_high, verdict (its colour and shape)."""
    longest = max((len(r["label"]) for r in rows), default=10)
    left, right, top, row_h, plot_w = max(260, int(6.8 * longest) + 110), 30, 58, 18, 420
    height = top + row_h * max(len(rows), 1) + 58
    width = left + plot_w + right
    values = [v for r in rows for v in (r["difference"], r["ci_low"], r["ci_high"]) if _ok(v)] or [1.0]
    span = max(abs(min(values)), abs(max(values))) * 1.1 or 1.0

    def sx(v: float) -> float:
        return left + (v + span) / (2 * span) * plot_w

    body = [_text(10, 18, title, size=13, weight="bold")]
    body += _legend([(k, c, s, False) for k, (c, s) in VERDICT_STYLE.items()][:1], left, 38)
    body += _legend([(k, c, s, False) for k, (c, s) in VERDICT_STYLE.items()][1:2], left + 110, 38)
    body += _legend([(k, c, s, False) for k, (c, s) in VERDICT_STYLE.items()][2:], left + 220, 38)
    bottom = top + row_h * len(rows)
    for t in nice_ticks(-span, span):
        body.append(f'<line x1="{_f(sx(t))}" x2="{_f(sx(t))}" y1="{top - 4}" y2="{_f(bottom)}" stroke="#e4e4e4"/>')
        body.append(_text(sx(t), bottom + 14, f"{t:+g}" if t else "0", anchor="middle", size=11))
    body.append(f'<line x1="{_f(sx(0))}" x2="{_f(sx(0))}" y1="{top - 4}" y2="{_f(bottom)}" stroke="#333"/>')
    for i, r in enumerate(rows):
        y = top + row_h * i + row_h / 2
        if i % 2:
            body.append(f'<rect x="0" y="{_f(y - row_h / 2)}" width="{width}" height="{row_h}" fill="#f4f4f4"/>')
        fill, shape = VERDICT_STYLE.get(r.get("verdict"), ("#777777", "diamond"))
        body.append(_text(left - 8 - 90, y + 4, r["label"], anchor="end", size=11))
        body.append(_text(left - 8, y + 4, r.get("note", ""), anchor="end", size=10, fill="#555"))
        if _ok(r["ci_low"]) and _ok(r["ci_high"]):
            body.append(f'<line x1="{_f(sx(r["ci_low"]))}" x2="{_f(sx(r["ci_high"]))}" y1="{_f(y)}" y2="{_f(y)}" '
                        f'stroke="{fill}" stroke-width="1.6"/>')
        if _ok(r["difference"]):
            body.append(marker(shape, sx(r["difference"]), y, fill, 3.6,
                               f"{r['label']}: {r['difference']:+.4f} ({r.get('verdict', '')})"))
    body.append(_text(left + plot_w / 2, bottom + 32, x_label, anchor="middle"))
    body.append(_text(10, height - 8, f"Source: {source}", size=10, fill="#555"))
    return _svg(width, height, title, body)


def reliability(points: Sequence[tuple[float, float, int]], *, title: str, source: str) -> str:
    """A reliability diagram: per bin, the observed positive rate against the mean predicted
    probability, both on [0, 1], with the diagonal of perfect calibration dashed; ``points`` are
    (mean score, rate, count) per bin, left to right."""
    left, top, side = 52, 34, 210
    width, height = max(left + side + 24, 20 + 7 * len(title)), top + side + 58  # room for a long entry name

    def sx(v: float) -> float:
        return left + min(max(v, 0.0), 1.0) * side

    def sy(v: float) -> float:
        return top + side - min(max(v, 0.0), 1.0) * side

    body = [_text(10, 18, title, size=12, weight="bold"),
            f'<rect x="{left}" y="{top}" width="{side}" height="{side}" fill="none" stroke="#999"/>']
    for t in nice_ticks(0.0, 1.0):
        body.append(f'<line x1="{_f(sx(t))}" x2="{_f(sx(t))}" y1="{top}" y2="{top + side}" stroke="#eee"/>')
        body.append(f'<line x1="{left}" x2="{left + side}" y1="{_f(sy(t))}" y2="{_f(sy(t))}" stroke="#eee"/>')
        body.append(_text(sx(t), top + side + 14, f"{t:g}", anchor="middle", size=10))
        body.append(_text(left - 5, sy(t) + 4, f"{t:g}", anchor="end", size=10))
    body.append(f'<line class="diagonal" x1="{_f(sx(0))}" y1="{_f(sy(0))}" x2="{_f(sx(1))}" y2="{_f(sy(1))}" '
                f'stroke="#666" stroke-dasharray="4 3"/>')
    shown = [(s, r, n) for s, r, n in points if _ok(s) and _ok(r)]
    if len(shown) > 1:
        body.append(f'<polyline fill="none" stroke="{colour(0)}" stroke-width="1.6" points="'
                    + " ".join(f"{_f(sx(s))},{_f(sy(r))}" for s, r, _ in shown) + '"/>')
    for k, (s, r, n) in enumerate(shown):
        body.append(marker("circle", sx(s), sy(r), colour(0), 3.4,
                           f"bin {k + 1}: mean predicted {s:.4f}, observed {r:.4f}, {n} cells"))
    if not shown:
        body.append(_text(left + 8, top + 18, "no scored cell", size=10, fill="#777"))
    body.append(_text(left + side / 2, top + side + 30, "mean predicted probability", anchor="middle", size=11))
    body.append(_text(14, top + side / 2, "observed positive rate", anchor="middle", size=11, rotate=-90))
    body.append(_text(10, height - 6, f"Source: {source}", size=9, fill="#555"))
    return _svg(width, height, title, body)
