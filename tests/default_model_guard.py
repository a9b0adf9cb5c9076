"""The default model's regression guard: a small fixed evaluation, and its recorded figures.

The test (test_default_model.py) runs this evaluation and fails if the bundled model scores
worse than the figures recorded in ``docs/default-model-guard.json`` by more than a small
tolerance. After bundling a new model on purpose, record its figures with

    python tests/default_model_guard.py --write

Images: four of scikit-image's photographs (reserved for evaluation, never trained on),
256² centre crops. Masks: the first four no-border masks of every paper band in the
committed ``masks/`` set. Pairing: pconv evaluate's seeded pairing, seed 7.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUARD_FILE = ROOT / "docs" / "default-model-guard.json"
IMAGES = ("astronaut", "chelsea", "coffee", "rocket")
MASKS_PER_BAND = 4
SEED = 7


def model_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare(folder: Path) -> tuple[Path, Path]:
    """Write the guard's images and masks under ``folder``."""
    from PIL import Image
    from skimage import data

    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    for name in IMAGES:
        Image.fromarray(getattr(data, name)()).convert("RGB").save(images / f"{name}.png")
    source = ROOT / "masks" / "no-border"
    taken: dict[str, int] = {}
    with (source / "masks.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if taken.get(row["band"], 0) < MASKS_PER_BAND:
                taken[row["band"]] = taken.get(row["band"], 0) + 1
                shutil.copyfile(source / row["file"], masks / Path(row["file"]).name)
    return images, masks


def run(folder: Path) -> dict:
    """Scores of the bundled model on the guard set: {band: {"psnr", "ssim", "n"}}."""
    from pconv_cli.evaluate import build_methods, evaluate, make_pairs
    from pconv_cli.inference import default_model_path

    images, masks = prepare(folder)
    pairs = make_pairs(images, masks, seed=SEED)
    report = evaluate(pairs, build_methods(methods=["pconv"], device="cpu"), size=(256, 256),
                      workers=1, lpips=False, device="cpu")
    bands = report.to_json()["methods"]["pconv"]["bands"]
    return {
        "model_sha256": model_digest(default_model_path()),
        "bands": {k: {"n": v["n"], "psnr": v["psnr"], "ssim": v["ssim"]}
                  for k, v in bands.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true",
                        help=f"record the figures in {GUARD_FILE.name}")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        figures = run(Path(tmp))
    text = json.dumps(figures, indent=2) + "\n"
    print(text)
    if args.write:
        GUARD_FILE.write_text(text)
        print(f"wrote {GUARD_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
