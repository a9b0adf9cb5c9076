"""Which files a run takes and where each one's mask and output are: the input folder's
images (:func:`discover`), their output names (never two on one path), their mask files
(:class:`_MaskFolder`), and :func:`plan`, which turns all of it into the tasks of one shard
without decoding a pixel."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from ..errors import InputError
from ..imaging import FORMAT_CHOICES, FORMAT_SUFFIX, IMAGE_SUFFIXES, UNSUPPORTED_SUFFIXES
from .options import RestoreOptions, in_shard
from .results import FileResult, RestoreTask

PREVIEW_DIR = "_previews"  # in OUT: the --concat previews
DETECTED_MASKS_DIR = "_masks"  # in OUT: the detected masks a run used (white = hole)


def _inside(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies somewhere under it (both resolved)."""
    return path == folder or folder in path.parents


def discover(input_path: Path, exclude: list[Path], *, recursive: bool
             ) -> tuple[list[Path], list[Path], int, int]:
    """Files under ``input_path``: (images, unsupported images, ignored count, unsearched dirs).

    Hidden files and folders are left out, and so are the ``exclude`` paths that lie inside
    the input: a folder with everything under it (OUT, a mask folder within IN), a file by
    itself (the shared mask). An excluded path that is the input itself or holds it (OUT or
    the mask folder a parent of IN) excludes nothing: every file is still the input's.
    """
    if input_path.is_file():
        suffix = input_path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            return [input_path], [], 0, 0
        if suffix in UNSUPPORTED_SUFFIXES:
            return [], [input_path], 0, 0
        raise InputError(f"{input_path}: not an image file ({suffix or 'no suffix'})")
    if not input_path.is_dir():
        raise InputError(f"{input_path}: no such file or folder")
    images, unsupported, ignored, unsearched = [], [], 0, 0
    root = input_path.resolve()
    excluded = {p.resolve() for p in exclude}
    excluded = {p for p in excluded if p != root and root in p.parents}
    walker = input_path.rglob("*") if recursive else input_path.iterdir()
    for path in walker:
        rel = path.relative_to(input_path)
        if any(part.startswith(".") for part in rel.parts):
            continue
        resolved = path.resolve()
        if resolved in excluded or not excluded.isdisjoint(resolved.parents):
            continue
        if path.is_dir():
            unsearched += not recursive
            continue
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            images.append(path)
        elif suffix in UNSUPPORTED_SUFFIXES:
            unsupported.append(path)
        else:
            ignored += 1
    return images, unsupported, ignored, unsearched


def _masks_beside_images(images: list[Path], root: Path, masks: Path) -> set[Path]:
    """The listed files that are the full-name masks of other listed images (``a.jpg.png`` for
    ``a.jpg``): where the mask folder is the input folder, masks sit beside the images."""
    by_place = {(p.resolve().parent, p.stem): p for p in images}
    found = set()
    for image in images:
        rel = image.relative_to(root)
        mask = by_place.get(((masks / rel.parent).resolve(), rel.name))
        if mask is not None:
            found.add(mask)
    return found


def _output_names(relatives: list[Path], fmt: str | None) -> dict[Path, Path | None]:
    """Output relative paths; inputs that would collide are kept apart, never overwritten.

    With ``--format png``, ``a.jpg`` and ``a.png`` would both become ``a.png``: the one
    already named ``.png`` keeps it and ``a.jpg`` is written as ``a.jpg.png``. A name that still
    collides maps to None (reported as a failure).
    """
    if fmt is None:
        return {rel: rel for rel in relatives}
    suffix = FORMAT_SUFFIX[fmt]
    same = {".jpg": (".jpg", ".jpeg"), ".tif": (".tif", ".tiff")}.get(suffix, (suffix,))

    def target(rel: Path) -> Path:
        return rel if rel.suffix.lower() in same else rel.with_suffix(suffix)

    groups: dict[str, list[Path]] = {}
    for rel in relatives:
        groups.setdefault(target(rel).as_posix().lower(), []).append(rel)
    names: dict[Path, Path | None] = {}
    for members in groups.values():
        for rel in members:
            collide = len(members) > 1 and rel.suffix.lower() not in same
            names[rel] = rel.with_name(rel.name + suffix) if collide else target(rel)
    seen: dict[str, Path] = {}
    for rel in relatives:
        key = names[rel].as_posix().lower()
        if key in seen:
            names[rel] = None
            names[seen[key]] = None
        else:
            seen[key] = rel
    return names


class _MaskFolder:
    """Pairs images with mask files by relative path: ``sub/a.jpg`` ↔ ``masks/sub/a.*``.

    A mask named after the whole file name (``sub/a.jpg.png``) wins over one named after the
    stem, which is how two images with the same stem (``a.jpg`` and ``a.png``) get their own
    masks. A stem mask that two images would share is an error, not a silent pairing.
    """

    def __init__(self, root: Path, images: list[Path], images_root: Path) -> None:
        if not root.is_dir():
            raise InputError(f"--masks {root}: no such folder")
        self.root = root
        self.images_root = images_root
        self._inputs = {(images_root / rel).resolve() for rel in images}
        self._listing: dict[Path, list[Path]] = {}
        self._stems: dict[tuple[Path, str], list[Path]] = {}
        for rel in images:
            self._stems.setdefault((rel.parent, rel.stem), []).append(rel)

    def _files(self, folder: Path) -> list[Path]:
        if folder not in self._listing:
            directory = self.root / folder
            self._listing[folder] = sorted(
                p for p in directory.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            ) if directory.is_dir() else []
        return self._listing[folder]

    def _matches(self, rel: Path) -> tuple[list[Path], list[Path]]:
        # Where masks sit beside the images, an image is never its own mask.
        image = (self.images_root / rel).resolve()
        files = [p for p in self._files(rel.parent) if p.resolve() != image]
        by_name = [p for p in files if p.stem == rel.name]
        by_stem = [p for p in files if p.stem == rel.stem]
        return by_name, by_stem

    def find(self, rel: Path) -> Path:
        by_name, by_stem = self._matches(rel)
        shown = (self.root / rel.parent).as_posix()
        for candidate in (by_name or by_stem)[:1]:
            if candidate.resolve() in self._inputs:  # masks beside images, named by stem
                raise InputError(
                    f"its mask {candidate.name} is one of the input images; a mask kept beside "
                    f"its image is named after the full file name ({rel.name}.png)"
                )
        if len(by_name) == 1:
            return by_name[0]
        if len(by_name) > 1:
            raise InputError(f"ambiguous masks {_names(by_name)} in {shown}; keep one")
        if len(by_stem) > 1:
            raise InputError(f"ambiguous masks {_names(by_stem)} in {shown}; keep one")
        if not by_stem:
            raise InputError(
                f"no mask for it in {shown} (looked for {rel.stem}.* and {rel.name}.*)"
            )
        rivals = [other for other in self._stems[(rel.parent, rel.stem)]
                  if other != rel and not self._matches(other)[0]]
        if rivals:
            both = _names(sorted([rel, *rivals]))
            raise InputError(
                f"mask {by_stem[0].name} would pair with {both}; name the masks after the full "
                f"file names ({rel.name}{by_stem[0].suffix}, ...)"
            )
        return by_stem[0]


def _names(paths: Iterable[Path]) -> str:
    return " and ".join(p.name for p in paths)


# ----------------------------------------------------------------------------- planning


class _Paired(NamedTuple):
    """An input of this shard with its output name and mask, before the outputs are checked
    against the inputs."""

    relative: Path
    output_relative: Path
    output: Path
    mask: Path | None


def plan(input_path: str | os.PathLike, output: str | os.PathLike,
         options: RestoreOptions, *, command: str = "restore"
         ) -> tuple[list[RestoreTask], list[FileResult], int, list[str]]:
    """The files of this shard: tasks to run, failures found without decoding, ignored count,
    notes. Raises :class:`InputError` when the run as a whole cannot start: OUT is the folder
    that holds the input or the mask folder, or there is no image to restore. ``command``
    names the command in those messages (``detect`` plans its runs here too)."""
    input_path, output = Path(input_path), Path(output)
    _refuse_output_folder(input_path, output, options, command)
    root = input_path if input_path.is_dir() else input_path.parent
    images, unsupported, ignored, notes = _find_inputs(input_path, root, output, options,
                                                       command)
    relatives = sorted([p.relative_to(root) for p in images + unsupported],
                       key=lambda r: r.as_posix())
    image_rels = [p.relative_to(root) for p in images]
    paired, failures = _pair(relatives, image_rels, {p.relative_to(root) for p in unsupported},
                             root, output, options)
    protected = {p.resolve() for p in images} | {
        Path(p.mask).resolve() for p in paired if p.mask is not None}
    tasks, refused = _tasks(paired, image_rels, protected, root, output, options)
    failures = sorted(failures + refused, key=lambda r: r.relative)
    if options.shard is not None and not tasks and not failures:
        k, n = options.shard
        notes.append(f"shard {k}/{n} holds none of the {len(relatives)} file(s)")
    return tasks, failures, ignored, notes


def _refuse_output_folder(input_path: Path, output: Path, options: RestoreOptions,
                          command: str) -> None:
    """OUT must be a folder (or not yet exist) apart from the inputs and the masks."""
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: exists and is not a folder")
    out_resolved = output.resolve()
    if input_path.is_dir() and out_resolved == input_path.resolve():
        raise InputError(f"OUT is the input folder: {command} never overwrites its inputs; "
                         "choose another folder")
    if input_path.is_file() and out_resolved == input_path.resolve().parent:
        raise InputError(f"OUT is the folder that holds {input_path.name}: {command} never "
                         "overwrites its inputs; choose another folder")
    if options.masks is not None and out_resolved == Path(options.masks).resolve():
        raise InputError("OUT is the mask folder: restore never writes among its masks; "
                         "choose another folder")


def _find_inputs(input_path: Path, root: Path, output: Path, options: RestoreOptions,
                 command: str) -> tuple[list[Path], list[Path], int, list[str]]:
    """The input's images and unsupported images (OUT, the masks and the masks kept beside
    the images left out), the count of other files, and notes; refuses an input with nothing
    to restore, or one with a top-level folder the run writes into."""
    exclude = [output] + [Path(p) for p in (options.masks, options.mask) if p is not None]
    images, unsupported, ignored, unsearched = discover(input_path, exclude,
                                                        recursive=options.recursive)
    if options.masks is not None:
        beside = _masks_beside_images(images, root, Path(options.masks))
        images = [p for p in images if p not in beside]
    if not images and not unsupported:
        raise InputError(_no_images(input_path, ignored, unsearched, command))
    notes = []
    if unsearched:
        notes.append(f"{unsearched} subfolder(s) not searched (pass --recursive to include them)")
    flag = "--concat" if command == "restore" else "--preview"
    if options.concat and any(p.relative_to(root).parts[0] == PREVIEW_DIR for p in images):
        raise InputError(f"the input has a top-level folder {PREVIEW_DIR!r}, where {flag} "
                         f"writes its previews; rename it or drop {flag}")
    if options.mask_from == "detect" and any(p.relative_to(root).parts[0] == DETECTED_MASKS_DIR
                                             for p in images):
        raise InputError(f"the input has a top-level folder {DETECTED_MASKS_DIR!r}, where "
                         "restore keeps the masks it detects; rename it or pass --masks")
    return images, unsupported, ignored, notes


def _pair(relatives: list[Path], image_rels: list[Path], unsupported: set[Path], root: Path,
          output: Path, options: RestoreOptions) -> tuple[list[_Paired], list[FileResult]]:
    """The files of this shard with their output names and masks; a file that has no usable
    format, output name or mask is a failure."""
    names = _output_names(image_rels, FORMAT_CHOICES[options.format])
    pairing = (_MaskFolder(Path(options.masks), image_rels, root)
               if options.masks is not None else None)
    paired: list[_Paired] = []
    failures = []
    for index, rel in enumerate(relatives):
        if not in_shard(index, options.shard):
            continue
        if rel in unsupported:
            failures.append(FileResult(rel.as_posix(), "failed", f"unsupported format "
                            f"{rel.suffix.lower()}; convert it to PNG, JPEG, WebP, TIFF or BMP"))
            continue
        out_rel = names[rel]
        if out_rel is None:
            failures.append(FileResult(rel.as_posix(), "failed",
                                       "output name collides with another input's; rename one"))
            continue
        try:
            mask = pairing.find(rel) if pairing is not None else options.mask
        except InputError as exc:
            failures.append(FileResult(rel.as_posix(), "failed", str(exc)))
            continue
        paired.append(_Paired(rel, out_rel, output / out_rel, mask))
    return paired, failures


def _tasks(paired: list[_Paired], image_rels: list[Path], protected: set[Path], root: Path,
           output: Path, options: RestoreOptions) -> tuple[list[RestoreTask], list[FileResult]]:
    """A task for each paired file whose output overwrites no input or mask (``protected``)
    and lands outside the input folder; a failure for each other one."""
    detecting = options.mask_from == "detect"
    # Detected masks are named as restore pairs them with images (a.png; a.jpg.png where
    # a.jpg and a.png share the stem): OUT/_masks can be edited and passed as --masks.
    mask_names = _output_names(image_rels, "PNG") if detecting else {}
    # OUT inside the input folder is left out of the listing; anywhere else, an output that
    # lands inside the input folder would be taken for an input by the next run.
    out_resolved, root_resolved = output.resolve(), root.resolve()
    out_in_input = out_resolved != root_resolved and _inside(out_resolved, root_resolved)
    tasks, failures = [], []
    for rel, out_rel, target, mask in paired:
        resolved = target.resolve()
        if resolved in protected:
            reason = f"the output {target} would overwrite an input or a mask; choose another OUT"
        elif not out_in_input and _inside(resolved, root_resolved):
            reason = f"the output {target} would be written inside the input folder"
        else:
            preview = (output / PREVIEW_DIR / (out_rel.as_posix() + ".jpg")
                       if options.concat else None)
            kept = (output / DETECTED_MASKS_DIR / mask_names[rel]) if detecting else None
            tasks.append(RestoreTask(root / rel, rel, target, mask, preview, kept))
            continue
        failures.append(FileResult(rel.as_posix(), "failed", reason))
    return tasks, failures


def _no_images(input_path: Path, ignored: int, unsearched: int, command: str = "restore") -> str:
    """Why a folder gave nothing to restore, and what to try."""
    formats = ", ".join(s.lstrip(".") for s in IMAGE_SUFFIXES)
    what = {"detect": "look for damage in"}.get(command, command)
    message = f"{input_path}: no images to {what} (looked for {formats})"
    if unsearched:
        message += f"; {unsearched} subfolder(s) not searched: pass --recursive to include them"
    if ignored:
        message += f"; {ignored} other file(s) are not images"
    return message
