"""Bundle a training run as pconv's default model, and keep what is needed to resume it.

    python scripts/bundle_default_model.py runs/default
    python scripts/bundle_default_model.py runs/detector     # a --task detect run

A damage detector's run goes to ``pconv_cli/weights/detector.pt`` and ``training/detector/``
instead (the checkpoint says which network it holds).

writes ``pconv_cli/weights/default.pt`` (the run's ``last.pt`` weights in fp16, with the step
and training settings as metadata) and copies ``last.pt`` (weights, optimizer, RNG, step),
``config.json`` and ``metrics.csv`` to ``training/default/`` so that training can continue
from the repository alone:

    python scripts/prepare_training_photos.py data/train --holdout-dir data/holdout
    mkdir -p runs && cp -r training/default runs/default
    pconv train --resume runs/default
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pconv_cli.checkpoint import DETECTOR, INPAINTER, load_checkpoint  # noqa: E402
from pconv_cli.fileio import atomic_path  # noqa: E402
from pconv_cli.train import bundle_weights  # noqa: E402

# model kind: (bundled weights, resume state)
DESTINATIONS = {
    INPAINTER: (ROOT / "pconv_cli" / "weights" / "default.pt", ROOT / "training" / "default"),
    DETECTOR: (ROOT / "pconv_cli" / "weights" / "detector.pt", ROOT / "training" / "detector"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run directory of pconv train")
    parser.add_argument("--no-resume-state", action="store_true",
                        help="bundle the weights only; do not copy last.pt to training/")
    args = parser.parse_args()
    last = args.run / "last.pt"
    ckpt = load_checkpoint(last)
    bundled, resume_dir = DESTINATIONS[ckpt.kind]
    bundle_weights(last, bundled)
    print(f"{bundled.relative_to(ROOT)}: {ckpt.kind}, step {ckpt.train.get('step')}, "
          f"{bundled.stat().st_size / 2**20:.1f} MiB")
    if args.no_resume_state:
        return
    resume_dir.mkdir(parents=True, exist_ok=True)
    for name in ("last.pt", "config.json", "metrics.csv"):
        with atomic_path(resume_dir / name) as tmp:
            shutil.copyfile(args.run / name, tmp)
    print(f"{resume_dir.relative_to(ROOT)}: resume state copied")


if __name__ == "__main__":
    main()
