"""Restore of a large scan with thin damage: time and peak memory, against baselines measured
in the same run.

The image users bring: a 24 MP JPEG (6000×4000) with about 0.3% thin damage (300 dust specks
and 40 hairs, 1–4 px wide). Each case runs ``pconv restore`` in a fresh process (peak memory
is the process's high-water resident set, VmHWM), in interleaved rounds (Linux only):

- decode + encode: reading the JPEG and writing it again, the floor of any restore;
- ns: OpenCV's Navier–Stokes over the whole image (the classical method users compare with);
- restore-auto (the default): thin regions filled by a classical method, the rest by the
  model, in crops around the damage at native resolution, tiled;
- restore-pconv (``--method pconv``): every hole by the model, at native resolution;
- restore-pconv-resize (``--method pconv --hd-strategy resize``): the whole image shrunk to
  ``--hd-size``, what a resize-based tool does.

    python benchmarks/bench_restore_thin.py [--rounds 2] [--size 6000x4000] [--checkpoint CKPT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))

CHILD = r"""
import json, sys, time
from pathlib import Path
case, src, masks, out, checkpoint = sys.argv[1:6]
start = time.perf_counter()
if case == "decode+encode":
    from PIL import Image
    with Image.open(src) as img:
        img.load()
        img.save(out, quality=95)
elif case == "ns":
    import cv2
    image = cv2.imread(src)
    mask = cv2.imread(masks, cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(out, cv2.inpaint(image, mask, 3, cv2.INPAINT_NS))
else:
    from pconv_cli.restore import RestoreOptions, restore
    from pconv_cli.routing import load_method
    strategy, method = {"restore-auto": ("crop", "auto"), "restore-pconv": ("crop", "pconv"),
                        "restore-pconv-resize": ("resize", "pconv")}[case]
    inpainter = load_method(method, model=None if checkpoint == "-" else checkpoint,
                            device="cpu")
    options = RestoreOptions(masks=Path(masks).parent, hd_strategy=strategy, workers=1)
    report = restore(src, out, inpainter, options)
    assert report.ok, [r.reason for r in report.failed]
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork and exec.
status = Path("/proc/self/status").read_text()
peak_mb = int(next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))
"""

CASES = ("decode+encode", "ns", "restore-auto", "restore-pconv", "restore-pconv-resize")


def synthetic_scan(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth colour fields plus grain: compresses and decodes like a photograph."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((max(2, height // 64), max(2, width // 64), 3)) * 255
    base = Image.fromarray(coarse.astype(np.uint8)).resize((width, height), Image.BICUBIC)
    grain = rng.normal(0, 6, (height, width, 3))
    return np.clip(np.asarray(base) + grain, 0, 255).astype(np.uint8)


def thin_damage(height: int, width: int, seed: int) -> Image.Image:
    """White = hole: 300 specks of 1–6 px and 40 hairs 1–4 px wide."""
    rng = np.random.default_rng(seed)
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(300):
        x, y, r = rng.integers(0, width), rng.integers(0, height), rng.uniform(0.5, 3)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    for _ in range(40):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.02, 0.15) * width
        points = []
        for _ in range(24):
            angle += rng.normal(0, 0.12)
            x, y = x + np.cos(angle) * length / 24, y + np.sin(angle) * length / 24
            points.append((x, y))
        draw.line(points, fill=255, width=int(rng.integers(1, 5)))
    return mask


def run_case(case: str, folder: Path, checkpoint: str) -> dict:
    src = folder / "in" / "scan.jpg"
    masks = folder / "masks" / "scan.png"
    out = folder / f"out-{case.replace('+', '-')}"
    if case in ("decode+encode", "ns"):
        out = out.with_suffix(".jpg")
    elif out.exists():
        import shutil

        shutil.rmtree(out)
    done = subprocess.run([sys.executable, "-c", CHILD, case, str(src), str(masks), str(out),
                           checkpoint], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", default="6000x4000", help="WxH")
    parser.add_argument("--checkpoint", default="-", help="default: the bundled model")
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated subset of the cases (decode+encode is always run)")
    args = parser.parse_args()
    cases = ("decode+encode", *[c for c in CASES[1:] if c in args.cases.split(",")])
    width, height = (int(v) for v in args.size.lower().split("x"))

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "in").mkdir()
        (folder / "masks").mkdir()
        Image.fromarray(synthetic_scan(height, width, 1)).save(folder / "in" / "scan.jpg",
                                                               quality=92)
        mask = thin_damage(height, width, 2)
        mask.save(folder / "masks" / "scan.png")
        hole = np.asarray(mask) > 127
        print(f"{width}x{height} JPEG, {hole.mean():.2%} thin damage; {args.rounds} rounds")
        results: dict[str, list[dict]] = {case: [] for case in cases}
        started = time.perf_counter()
        for round_index in range(args.rounds):
            order = cases if round_index % 2 == 0 else tuple(reversed(cases))
            for case in order:
                results[case].append(run_case(case, folder, args.checkpoint))
        base = statistics.median(r["seconds"] for r in results["decode+encode"])
        rows = []
        for case in cases:
            seconds = statistics.median(r["seconds"] for r in results[case])
            peak = max(r["peak_mb"] for r in results[case])
            rows.append((case, f"{seconds:.2f} s", f"{seconds / base:.1f}×", f"{peak:.0f} MB"))
        print_table(("case", "time (median)", "× decode+encode", "peak RSS"), rows)
        print(f"(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
