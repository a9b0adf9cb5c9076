#!/usr/bin/env python3
"""Prepare pconv's training photographs from Debian wallpaper packages.

    python scripts/prepare_training_photos.py OUT_DIR [--holdout-dir DIR]

For each package below this runs ``apt-get download`` into a temporary folder, unpacks the
.deb with ``dpkg-deb -x`` (nothing is installed), and converts the photographs named in the
allow-list to RGB JPEG (quality 95, short side 768 px, Lanczos) as
``OUT_DIR/<package>/<name>.jpg``. It also writes ``OUT_DIR/SOURCES.csv`` (author, licence,
source file and package version of every photo written).

Only photographs are kept. Rendered and abstract wallpapers teach a network flat gradients and
hard vector edges, which is not what it meets when restoring photos; so the selection is an
explicit allow-list of files that were checked by eye, not a heuristic. Files that a newer
package version adds are reported as "unreviewed" and left out until someone looks at them.

A few photographs are held out for the examples shipped with pconv. They are never written to
OUT_DIR (an example restored by a model that was trained on it would flatter the model); with
``--holdout-dir DIR`` they are written to DIR instead, with the same processing.

Running it again skips photos that already exist, and a package whose photos all exist is not
downloaded at all. Needs a Debian-based system (apt-get, dpkg-deb) with package lists
(``apt-get update``); Python needs only Pillow and numpy.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

SHORT_SIDE = 768
JPEG_QUALITY = 95
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".svg"}


@dataclass(frozen=True)
class Photo:
    name: str  # output file stem
    source: str  # path inside the unpacked package
    author: str
    licence: str  # SPDX identifier, as given by the package
    holdout: bool = False


@dataclass(frozen=True)
class Package:
    name: str
    tested_version: str  # the version this allow-list was checked against
    licence_note: str
    photos: tuple[Photo, ...]
    rejected: dict[str, str]  # candidate key -> why it is not used

    def key(self, relpath: str) -> str:
        """The name a file is listed under: one key per wallpaper, not per resolution."""
        parts = Path(relpath).parts
        if "wallpapers" in parts:  # KDE layout: wallpapers/<Name>/contents/images/WxH.ext
            return parts[parts.index("wallpapers") + 1]
        return Path(relpath).stem


LOMIRI = "usr/share/backgrounds"
MATE = "usr/share/backgrounds/mate"
KDE = "usr/share/wallpapers"


def _kde(name: str, author: str, *, holdout: bool = False) -> Photo:
    # The largest rendition shipped; all of the photographs come at 2560x1600.
    return Photo(name, f"{KDE}/{name}/contents/images/2560x1600.jpg", author, "LGPL-3.0",
                 holdout)


PACKAGES: tuple[Package, ...] = (
    Package(
        name="lomiri-wallpapers-16.04",
        tested_version="20.04.0-2",
        licence_note="per-file licences from usr/share/doc/lomiri-wallpapers-16.04/copyright",
        photos=(
            Photo("aitzgorri_by_Aitzol_Berasategi", f"{LOMIRI}/aitzgorri_by_Aitzol_Berasategi.jpg",
                  "Aitzol Berasategi", "CC-BY-4.0"),
            Photo("analogpattern_by_Peter_Nerlich", f"{LOMIRI}/analogpattern_by_Peter_Nerlich.jpg",
                  "Peter Nerlich", "CC-BY-SA-4.0"),
            Photo("Bridge_by_Sander_Klootwijk", f"{LOMIRI}/Bridge_by_Sander_Klootwijk.jpg",
                  "Sander Klootwijk", "CC-BY-SA-4.0"),
            Photo("Dragonfly_by_Bolly", f"{LOMIRI}/Dragonfly_by_Bolly.jpg",
                  '"Bolly"', "CC-BY-SA-4.0"),
            Photo("free_by_Peter_Nerlich", f"{LOMIRI}/free_by_Peter_Nerlich.jpg",
                  "Peter Nerlich", "CC-BY-SA-4.0"),
            Photo("friends_by_Aitzol_Berasategi", f"{LOMIRI}/friends_by_Aitzol_Berasategi.jpg",
                  "Aitzol Berasategi", "CC-BY-4.0"),
            Photo("greentock_by_Peter_Nerlich", f"{LOMIRI}/greentock_by_Peter_Nerlich.jpg",
                  "Peter Nerlich", "CC-BY-SA-4.0"),
            Photo("life_by_Aitzol_Berasategi", f"{LOMIRI}/life_by_Aitzol_Berasategi.jpg",
                  "Aitzol Berasategi", "CC-BY-4.0"),
            Photo("picosdeeuropa_by_Aitzol_Berasategi",
                  f"{LOMIRI}/picosdeeuropa_by_Aitzol_Berasategi.jpg",
                  "Aitzol Berasategi", "CC-BY-4.0", holdout=True),
            Photo("Picture_0B_by_freespace", f"{LOMIRI}/Picture_0B_by_freespace.jpg",
                  'Trevor "Freespace"', "CC-BY-4.0"),
            Photo("Picture_1A_by_freespace", f"{LOMIRI}/Picture_1A_by_freespace.jpg",
                  'Trevor "Freespace"', "CC-BY-4.0"),
            Photo("seeding_by_Clements_Engelhardt", f"{LOMIRI}/seeding_by_Clements_Engelhardt.jpg",
                  "Clemens Engelhardt", "CC0-1.0"),
            Photo("sunset_by_Aitzol_Berasategi", f"{LOMIRI}/sunset_by_Aitzol_Berasategi.jpg",
                  "Aitzol Berasategi", "CC-BY-4.0"),
            Photo("Wine_by_Jakkub_Mede", f"{LOMIRI}/Wine_by_Jakkub_Mede.jpg",
                  "Jakub Mede", "CC-BY-4.0"),
        ),
        rejected={"umang_by_Abhishek_Mudgal": "rendered abstract colour gradient"},
    ),
    Package(
        name="mate-backgrounds",
        tested_version="1.26.0-1",
        licence_note="GPL-2+ for every file used, per usr/share/doc/mate-backgrounds/copyright",
        photos=(
            Photo("Aqua", f"{MATE}/nature/Aqua.jpg", "Charles Barbin", "GPL-2.0-or-later"),
            Photo("Blinds", f"{MATE}/nature/Blinds.jpg",
                  "Lennart Poettering, Andrea Cimitan", "GPL-2.0-or-later"),
            Photo("Dune", f"{MATE}/nature/Dune.jpg",
                  "Marco Cogoni, Hylke Bons", "GPL-2.0-or-later"),
            Photo("FreshFlower", f"{MATE}/nature/FreshFlower.jpg",
                  "Jens Ansorg", "GPL-2.0-or-later"),
            Photo("Garden", f"{MATE}/nature/Garden.jpg", "Charles Barbin", "GPL-2.0-or-later"),
            Photo("GreenMeadow", f"{MATE}/nature/GreenMeadow.jpg",
                  "Timothy Schellhase, Lapo Calamandrei", "GPL-2.0-or-later"),
            Photo("LadyBird", f"{MATE}/nature/LadyBird.jpg", "Charles Barbin",
                  "GPL-2.0-or-later", holdout=True),
            Photo("RainDrops", f"{MATE}/nature/RainDrops.jpg",
                  '"blackcombwhistler07"', "GPL-2.0-or-later"),
            Photo("Storm", f"{MATE}/nature/Storm.jpg", "Sergey Nazarov", "GPL-2.0-or-later"),
            Photo("TwoWings", f"{MATE}/nature/TwoWings.jpg",
                  "Charles Barbin, Hylke Bons", "GPL-2.0-or-later"),
            Photo("Wood", f"{MATE}/nature/Wood.jpg",
                  "Jean-François Fortin Tam", "GPL-2.0-or-later"),
            Photo("YellowFlower", f"{MATE}/nature/YellowFlower.jpg",
                  "Charles Barbin", "GPL-2.0-or-later"),
        ),
        rejected={
            "Arc-Colors-Transparent-Wallpaper": "flat vector shapes",
            "Elephants": "painting",
            "Elephants_3840x2160": "painting",
            "Elephants_5640x3172": "painting",
            "Flow": "vector illustration",
            "Gulp": "vector illustration",
            "Silk": "rendered abstract",
            "Spring": "rendered abstract",
            "Waves": "rendered abstract",
            "Float-into-MATE": "logo artwork",
            "GreenTraditional": "logo on a gradient",
            "MATE-Stripes-Dark": "flat stripes",
            "MATE-Stripes-Light": "flat stripes",
            "Stripes": "rendered stripes",
            "Ubuntu-Mate-Cold-no-logo": "rendered blur",
            "Ubuntu-Mate-Dark-no-logo": "rendered blur",
            "Ubuntu-Mate-Radioactive-no-logo": "rendered blur",
            "Ubuntu-Mate-Warm-no-logo": "rendered blur",
        },
    ),
    Package(
        name="plasma-workspace-wallpapers",
        tested_version="4:5.27.5-2",
        licence_note="LGPL-3.0 per each wallpaper's metadata.json; the package's copyright "
        "file gives GPL-2+ for all files",
        photos=(
            _kde("BytheWater", "Maciej Wiklo"),
            _kde("ColdRipple", "Risto Saukonpää", holdout=True),
            _kde("ColorfulCups", "Dmitri Popov"),
            _kde("DarkestHour", "Risto Saukonpää"),
            _kde("EveningGlow", "Ian Hex"),
            _kde("FallenLeaf", "Martin Klapetek"),
            _kde("Grey", "Sigi Sagi"),
            _kde("Kite", "Risto Saukonpää"),
            _kde("OneStandsOut", "Risto Saukonpää"),
            _kde("Path", "Risto Saukonpää"),
            _kde("summer_1am", "Risto Saukonpää"),
        ),
        rejected={
            name: "rendered or painted artwork"
            for name in (
                "Altai", "Autumn", "Canopee", "Cascade", "Cluster", "Elarun", "Flow",
                "FlyingKonqui", "Honeywave", "IceCold", "Kay", "Kokkini", "MilkyWay", "Opal",
                "PastelHills", "Patak", "SafeLanding", "Shell", "Volna",
            )
        },
    ),
)

SOURCES_FIELDS = ["package", "version", "file", "source", "author", "licence", "width", "height"]


def die(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def check_tools() -> None:
    missing = [tool for tool in ("apt-get", "dpkg-deb") if shutil.which(tool) is None]
    if missing:
        die(
            f"{' and '.join(missing)} not found. This script fetches the photographs from "
            "Debian packages, so it needs a Debian or Ubuntu system (apt-get, dpkg-deb); "
            "run it there and copy the output folder."
        )


def run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        die(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{detail}")
    return proc.stdout


def fetch(package: Package, workdir: Path) -> tuple[Path, str]:
    """Download and unpack ``package``; return the unpacked root and the package version."""
    print(f"  apt-get download {package.name}")
    proc = subprocess.run(["apt-get", "download", package.name], cwd=workdir,
                          capture_output=True, text=True)
    debs = sorted(workdir.glob("*.deb"))
    if proc.returncode != 0 or not debs:
        detail = (proc.stderr or proc.stdout).strip()
        die(
            f"apt-get download {package.name} failed (exit {proc.returncode}):\n{detail}\n"
            "If the package is unknown, run `apt-get update` first."
        )
    deb = debs[0]
    version = run(["dpkg-deb", "-f", str(deb), "Version"], workdir).strip()
    if version != package.tested_version:
        print(f"  note: version {version}; the allow-list was checked against "
              f"{package.tested_version}")
    root = workdir / "root"
    run(["dpkg-deb", "-x", str(deb), str(root)], workdir)
    return root, version


def convert(src: Path, dst: Path) -> tuple[int, int]:
    """Write ``src`` as an RGB JPEG whose short side is SHORT_SIDE; return the new size."""
    with Image.open(src) as img:
        img = ImageOps.exif_transpose(img)
        img = img.convert("RGB")
    w, h = img.size
    scale = SHORT_SIDE / min(w, h)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    else:
        # Upscaling would only add interpolated pixels that look like no real photo.
        print(f"    note: {src.name} is {w}x{h}, smaller than {SHORT_SIDE} px; kept as is")
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] != 3:
        die(f"{src}: unexpected pixel layout {arr.shape}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so an interrupted run never leaves a truncated
    # JPEG that the next run would skip as already done.
    tmp = dst.with_name(f".{dst.name}.part")
    img.save(tmp, "JPEG", quality=JPEG_QUALITY, optimize=True)
    os.replace(tmp, dst)
    return img.size


def read_sources(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["file"]: row for row in csv.DictReader(fh)}


def write_sources(path: Path, rows: dict[str, dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=SOURCES_FIELDS)
        writer.writeheader()
        for key in sorted(rows):
            writer.writerow(rows[key])


def report_unlisted(package: Package, root: Path) -> None:
    listed = {package.key(p.source) for p in package.photos}
    found: set[str] = set()
    for path in root.rglob("*"):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            found.add(package.key(str(path.relative_to(root))))
    for key in sorted(found - listed, key=str.lower):
        reason = package.rejected.get(key)
        if reason:
            print(f"    skip {key}: not a photograph ({reason})")
        else:
            print(f"    skip {key}: unreviewed (new in this package version?); "
                  "look at it and add it to the allow-list if it is a photograph")


def process(package: Package, out_dir: Path, holdout_dir: Path | None,
            sources: dict[Path, dict[str, dict[str, str]]]) -> dict[str, int]:
    counts = {"written": 0, "existing": 0, "held_out": 0}
    jobs: list[tuple[Photo, Path, Path]] = []  # photo, destination, its root folder
    for photo in package.photos:
        if photo.holdout and holdout_dir is None:
            counts["held_out"] += 1
            continue
        base = holdout_dir if photo.holdout else out_dir
        dst = base / package.name / f"{photo.name}.jpg"
        if dst.exists():
            counts["existing"] += 1
            rel = dst.relative_to(base).as_posix()
            rows = sources.setdefault(base, {})
            if rel not in rows:  # SOURCES.csv lost or older than the photo: rebuild its row
                with Image.open(dst) as img:
                    w, h = img.size
                rows[rel] = {
                    "package": package.name, "version": "", "file": rel,
                    "source": photo.source, "author": photo.author, "licence": photo.licence,
                    "width": str(w), "height": str(h),
                }
        else:
            jobs.append((photo, dst, base))

    print(f"{package.name}: {len(package.photos)} photographs allow-listed "
          f"({sum(p.holdout for p in package.photos)} held out)")
    if not jobs:
        print("  all present, nothing to download")
        return counts

    with tempfile.TemporaryDirectory(prefix="pconv-photos-") as tmp:
        root, version = fetch(package, Path(tmp))
        report_unlisted(package, root)
        for photo, dst, base in jobs:
            src = root / photo.source
            if not src.is_file():
                die(f"{package.name} {version} has no {photo.source}; the package changed, "
                    "so review its images and update the allow-list in this script")
            w, h = convert(src, dst)
            where = "held out ->" if photo.holdout else "->"
            print(f"  {photo.source} {where} {dst} ({w}x{h})")
            counts["written"] += 1
            rel = dst.relative_to(base).as_posix()
            sources.setdefault(base, {})[rel] = {
                "package": package.name, "version": version, "file": rel,
                "source": photo.source, "author": photo.author, "licence": photo.licence,
                "width": str(w), "height": str(h),
            }
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Prepare pconv's training photographs from Debian wallpaper packages.")
    parser.add_argument("out_dir", type=Path, help="training photos go to OUT_DIR/<package>/")
    parser.add_argument("--holdout-dir", type=Path, default=None,
                        help="write the held-out example photos here (never into OUT_DIR)")
    args = parser.parse_args(argv)

    out_dir = args.out_dir.resolve()
    holdout_dir = args.holdout_dir.resolve() if args.holdout_dir else None
    if holdout_dir is not None and (holdout_dir == out_dir or out_dir in holdout_dir.parents):
        # Training reads its folder recursively, so a hold-out folder inside it would leak.
        die("--holdout-dir must not be OUT_DIR or inside it")

    # Refuse to add to a training folder that already contains a held-out photo (from an
    # older allow-list, say): the examples would no longer be unseen.
    leaked = [out_dir / pkg.name / f"{p.name}.jpg" for pkg in PACKAGES for p in pkg.photos
              if p.holdout and (out_dir / pkg.name / f"{p.name}.jpg").exists()]
    if leaked:
        die("held-out photos found in the training folder; delete them first:\n  "
            + "\n  ".join(map(str, leaked)))

    check_tools()

    sources: dict[Path, dict[str, dict[str, str]]] = {}
    for base in filter(None, (out_dir, holdout_dir)):
        sources[base] = read_sources(base / "SOURCES.csv")

    totals = {"written": 0, "existing": 0, "held_out": 0}
    per_package: list[tuple[str, int]] = []
    for package in PACKAGES:
        counts = process(package, out_dir, holdout_dir, sources)
        for k, v in counts.items():
            totals[k] += v
        n_train = sum(1 for p in package.photos if not p.holdout)
        per_package.append((package.name, n_train))

    for base, rows in sources.items():
        if rows:
            write_sources(base / "SOURCES.csv", rows)

    print()
    for name, n in per_package:
        print(f"  {name}: {n} training photos")
    print(f"done: {totals['written']} written, {totals['existing']} already present"
          + (f", {totals['held_out']} held out (not written; see --holdout-dir)"
             if totals["held_out"] else ""))
    print(f"training photos: {out_dir}")
    if holdout_dir is not None:
        print(f"held-out photos: {holdout_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
