"""Restore speed and memory, each against a baseline measured in the same run.

1. End-to-end ``restore`` over a folder vs model-only throughput on the same images
   (goal ≥ 0.90: decoding and encoding hidden behind compute).
2. ONNX Runtime vs torch on the CPU at 512² (goal: ORT time ≤ 0.65× torch's).
3. Peak memory (RSS) of a process restoring one 6000×4000 image with the crop strategy, and of
   the same process only loading the model (goal ≤ 1.5 GB).

Rounds are interleaved (baseline, candidate, baseline, ...) and medians are reported, so that
a machine whose load changes during the run affects both sides alike.

    python benchmarks/bench_restore.py                   # all three, 7-layer half-width net
    python benchmarks/bench_restore.py --depth 8 --width 64 --only ort
    python benchmarks/bench_restore.py --checkpoint model.pt
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from pconv_cli.checkpoint import load_checkpoint, save_checkpoint
from pconv_cli.core import PConvUNet, UNetConfig
from pconv_cli.export import export_onnx
from pconv_cli.imaging import load_image, load_mask
from pconv_cli.inference import OnnxInpainter, TorchInpainter
from pconv_cli.restore import RestoreOptions, restore


def synthetic_photo(height: int, width: int, seed: int) -> Image.Image:
    """Smooth colour fields plus grain: compresses and decodes like a photograph."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((max(2, height // 64), max(2, width // 64), 3)) * 255
    base = Image.fromarray(coarse.astype(np.uint8)).resize((width, height), Image.BICUBIC)
    grain = rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(base) + grain, 0, 255).astype(np.uint8))


def damage_mask(height: int, width: int, seed: int) -> Image.Image:
    """White = hole: a few blobs and two long scratches, like a damaged print."""
    rng = np.random.default_rng(seed)
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    blob = max(8, min(height, width) // 25)
    for _ in range(6):
        x, y = rng.integers(0, width - blob), rng.integers(0, height - blob)
        draw.ellipse([x, y, x + blob * rng.uniform(0.5, 1.5), y + blob * rng.uniform(0.5, 1.5)],
                     fill=255)
    for _ in range(2):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        length = min(height, width) // 3
        angle = rng.uniform(0, np.pi)
        draw.line([x0, y0, x0 + length * np.cos(angle), y0 + length * np.sin(angle)],
                  fill=255, width=max(2, blob // 12))
    return mask


def make_folder(root: Path, files: int, size: int) -> tuple[Path, Path]:
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for i in range(files):
        synthetic_photo(size, size, i).save(images / f"{i:04d}.jpg", quality=90)
        damage_mask(size, size, 1000 + i).save(masks / f"{i:04d}.png")
    return images, masks


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_end_to_end(checkpoint: Path, work: Path, args) -> dict:
    images, masks = make_folder(work / "folder", args.files, args.size)
    inpainter = TorchInpainter.from_checkpoint(checkpoint, device="cpu")
    options = RestoreOptions(masks=masks, batch_size=args.batch_size, workers=args.workers)
    # The model-only baseline gets the same inputs, already decoded, in the same batches.
    decoded = np.stack([load_image(p) for p in sorted(images.iterdir())])
    valid = np.stack([load_mask(p) for p in sorted(masks.iterdir())])

    def model_only() -> None:
        for start in range(0, len(decoded), args.batch_size):
            inpainter.inpaint(decoded[start:start + args.batch_size],
                              valid[start:start + args.batch_size])

    def end_to_end() -> None:
        out = work / "out"
        shutil.rmtree(out, ignore_errors=True)
        report = restore(images, out, inpainter, options)
        assert report.count("restored") == args.files, report.failed

    model_only()  # warm-up: allocator, first-call costs
    base, cand = [], []
    for _ in range(args.rounds):
        base.append(timed(model_only))
        cand.append(timed(end_to_end))
    model_fps = args.files / statistics.median(base)
    e2e_fps = args.files / statistics.median(cand)
    return {"files": args.files, "size": args.size, "model_only_files_per_s": model_fps,
            "end_to_end_files_per_s": e2e_fps, "ratio": e2e_fps / model_fps}


def bench_onnx(checkpoint: Path, work: Path, args) -> dict:
    onnx_path = work / "model.onnx"
    export_onnx(checkpoint, onnx_path)
    # The runtimes alone: the seam blend after either is the same numpy work.
    torch_inpainter = TorchInpainter.from_checkpoint(checkpoint, device="cpu", blend="none")
    ort_inpainter = OnnxInpainter(onnx_path, device="cpu", blend="none")
    images = np.asarray(synthetic_photo(512, 512, 7), dtype=np.float32)[None] / 255.0
    valid = ~(np.asarray(damage_mask(512, 512, 8)) > 127)[None]
    torch_inpainter.inpaint(images, valid)
    ort_inpainter.inpaint(images, valid)
    base, cand = [], []
    for _ in range(args.rounds):
        base.append(timed(lambda: torch_inpainter.inpaint(images, valid)))
        cand.append(timed(lambda: ort_inpainter.inpaint(images, valid)))
    t, o = statistics.median(base), statistics.median(cand)
    return {"torch_s": t, "onnxruntime_s": o, "ratio": o / t,
            "threads": torch.get_num_threads()}


def bench_memory(checkpoint: Path, work: Path, args) -> dict:
    height, width = 4000, 6000
    image_dir, mask_dir = work / "big" / "images", work / "big" / "masks"
    image_dir.mkdir(parents=True)
    mask_dir.mkdir(parents=True)
    synthetic_photo(height, width, 11).save(image_dir / "scan.jpg", quality=90)
    damage_mask(height, width, 12).save(mask_dir / "scan.png")
    base, cand, seconds = [], [], []
    for _ in range(args.memory_rounds):
        base.append(_child(["--child-load", str(checkpoint)])["peak_mb"])
        out = work / "big" / "out"
        shutil.rmtree(out, ignore_errors=True)
        run = _child(["--child-restore", str(checkpoint), str(image_dir), str(mask_dir),
                      str(out)])
        cand.append(run["peak_mb"])
        seconds.append(run["seconds"])
    return {"image": f"{width}x{height}", "strategy": "crop",
            "load_only_peak_mb": statistics.median(base),
            "restore_peak_mb": statistics.median(cand),
            "restore_seconds": statistics.median(seconds)}


def _child(argv: list[str]) -> dict:
    """Run this script as a fresh process, so that its peak RSS is that work's alone."""
    proc = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _peak_mb() -> float:
    """Peak RSS of this process's own memory image (VmHWM).

    Not ru_maxrss: on Linux that carries over the parent's peak across fork + exec.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _child_main(argv: list[str]) -> None:
    start = time.perf_counter()
    if argv[0] == "--child-load":
        TorchInpainter.from_checkpoint(argv[1], device="cpu")
    else:
        _, ckpt, images, masks, out = argv
        inpainter = TorchInpainter.from_checkpoint(ckpt, device="cpu")
        report = restore(images, out, inpainter, RestoreOptions(masks=Path(masks)))
        assert report.count("restored") == 1, report.failed
    print(json.dumps({"peak_mb": _peak_mb(), "seconds": time.perf_counter() - start}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="a pconv checkpoint (default: a "
                        "random-weight model of --depth/--width; speed does not depend on weights)")
    parser.add_argument("--depth", type=int, default=7)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, help="torch / ORT threads (default: torch's)")
    parser.add_argument("--only", default="e2e,ort,memory")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="pconv-bench-") as scratch:
        work = Path(scratch)
        checkpoint = args.checkpoint
        if checkpoint is None:
            checkpoint = work / "model.pt"
            config = UNetConfig(depth=args.depth, width=args.width)
            save_checkpoint(checkpoint, config, PConvUNet(config).state_dict())
        config = load_checkpoint(checkpoint).model_config
        print(f"model depth {config.depth} width {config.width}, "
              f"{torch.get_num_threads()} thread(s)")
        wanted = set(args.only.split(","))
        if "e2e" in wanted:
            r = bench_end_to_end(checkpoint, work, args)
            print(f"end-to-end {r['end_to_end_files_per_s']:.2f} files/s vs model-only "
                  f"{r['model_only_files_per_s']:.2f} files/s ({r['files']} × {r['size']}² JPEG): "
                  f"ratio {r['ratio']:.2f} (goal ≥ 0.90)")
        if "ort" in wanted:
            r = bench_onnx(checkpoint, work, args)
            print(f"512²: torch {r['torch_s'] * 1000:.0f} ms, ONNX Runtime "
                  f"{r['onnxruntime_s'] * 1000:.0f} ms: ratio {r['ratio']:.2f} (goal ≤ 0.65)")
        if "memory" in wanted:
            r = bench_memory(checkpoint, work, args)
            print(f"6000×4000 crop restore: peak RSS {r['restore_peak_mb']:.0f} MB vs "
                  f"{r['load_only_peak_mb']:.0f} MB for loading the model alone "
                  f"(+{r['restore_peak_mb'] - r['load_only_peak_mb']:.0f} MB; goal ≤ 1536 MB), "
                  f"{r['restore_seconds']:.1f} s")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("--child-"):
        _child_main(sys.argv[1:])
    else:
        main()
