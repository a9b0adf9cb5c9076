"""The mask library: bands, the generator, steering into bands and mask-set folders."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pconv_cli.errors import ConfigError, InputError
from pconv_cli.imaging import load_mask
from pconv_cli.masks import (
    PAPER_BAND_EDGES,
    MaskParams,
    MaskSetSpec,
    band_label,
    band_of,
    generate_mask,
    hole_ratio,
    mask_seed,
    parse_bands,
    parse_size,
    preview_sheet,
    read_manifest,
    sample_mask,
    transform_mask,
    write_mask_set,
)

# Augmentations off: a transformed mask must equal its source pixel for pixel.
IDENTITY = MaskParams(dilation=(0, 0), rotation=(0, 0), crop=(1, 1))


def mask_with_holes(n_holes: int, shape=(100, 100)) -> np.ndarray:
    valid = np.ones(shape, bool)
    valid.flat[:n_holes] = False
    return valid


def tiny_spec(**kwargs) -> MaskSetSpec:
    base = dict(size=(64, 64), seed=7, per_band=1, borders=(True, False))
    base.update(kwargs)
    return MaskSetSpec(**base)


def files_bytes(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


# ----------------------------------------------------------------------------- bands


@pytest.mark.parametrize("band", range(len(PAPER_BAND_EDGES) - 1))
def test_ratio_exactly_on_an_upper_edge_belongs_to_the_band_below(band):
    edge = PAPER_BAND_EDGES[band + 1]
    n = round(edge * 100 * 100)
    assert hole_ratio(mask_with_holes(n)) == edge
    assert band_of(hole_ratio(mask_with_holes(n))) == band
    above = band_of(hole_ratio(mask_with_holes(n + 1)))
    assert above == (band + 1 if band + 1 < len(PAPER_BAND_EDGES) - 1 else None)


def test_ratio_on_the_lowest_edge_or_outside_is_in_no_band():
    assert band_of(hole_ratio(mask_with_holes(100))) is None  # exactly 0.01
    assert band_of(hole_ratio(mask_with_holes(101))) == 0
    assert band_of(0.0) is None
    assert band_of(0.9) is None


def test_custom_edges_are_half_open():
    edges = parse_bands("0.05,0.15,0.3")
    assert edges == (0.05, 0.15, 0.3)
    assert band_of(0.15, edges) == 0
    assert band_of(0.3, edges) == 1
    assert band_of(0.05, edges) is None


def test_band_labels_use_the_shortest_float_text():
    assert band_label(0.01, 0.1) == "(0.01,0.1]"
    assert band_label(0.9, 1) == "(0.9,1.0]"


def test_paper_bands_are_the_default_edges():
    assert parse_bands("paper") == PAPER_BAND_EDGES == (0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


@pytest.mark.parametrize("text", ["0.3,0.2", "0.1,0.1", "0.2", "0.1,abc", "0.5,1.5"])
def test_empty_inverted_or_malformed_bands_are_refused(text):
    with pytest.raises(ConfigError):
        parse_bands(text)


def test_hole_ratio_counts_false_pixels_as_holes():
    valid = np.ones((10, 10), bool)
    valid[:3] = False
    assert hole_ratio(valid) == 0.3
    assert hole_ratio(valid.astype(np.float32)) == 0.3


# ----------------------------------------------------------------------------- generator


def test_generated_mask_is_a_bool_array_of_the_requested_height_and_width():
    mask = generate_mask(np.random.default_rng(0), (96, 128))
    assert mask.dtype == np.bool_ and mask.shape == (96, 128)
    assert 0 < hole_ratio(mask) < 1


def test_same_generator_state_gives_the_same_mask():
    a = generate_mask(np.random.default_rng(42), 128)
    b = generate_mask(np.random.default_rng(42), 128)
    c = generate_mask(np.random.default_rng(43), 128)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def packed_digest(valid: np.ndarray) -> str:
    return hashlib.sha256(np.packbits(valid).tobytes()).hexdigest()[:16]


def test_fixed_seeds_give_the_pinned_pixels():
    # Sets made earlier are resumed and extended only if the same seed still gives the same
    # pixels. If this fails on purpose, bump GENERATOR_VERSION and pin the new digests.
    assert mask_seed(2018, 1, 0, 3, 7) == 2522189387801866946
    assert packed_digest(generate_mask(np.random.default_rng(0), (96, 128))) == "cbd93a1277781b65"
    steered = sample_mask(mask_seed(5, 1, 1, 2, 0), 96, band=(0.2, 0.3), margin=4)
    assert (packed_digest(steered.valid), steered.draws) == ("8cfedc75b7d29480", 5)
    free = sample_mask(11, 64, MaskParams(strokes=(2, 3)))
    assert (packed_digest(free.valid), free.hole_ratio) == ("8caacc77bda11491", 0.129150390625)


def test_default_parameters_cover_the_paper_bands_without_steering():
    ratios = [hole_ratio(generate_mask(np.random.default_rng(i), 64)) for i in range(300)]
    bands = {band_of(r) for r in ratios}
    assert set(range(6)) <= bands


def test_margin_keeps_every_edge_pixel_valid():
    m = 6
    for i in range(40):
        mask = generate_mask(np.random.default_rng(i), 64, MaskParams(strokes=(6, 8)), margin=m)
        assert mask[:m].all() and mask[-m:].all() and mask[:, :m].all() and mask[:, -m:].all()


def test_invalid_parameters_are_refused():
    with pytest.raises(ConfigError):
        MaskParams(stroke_width=(0.1, 0.05))
    with pytest.raises(ConfigError):
        MaskParams(crop=(0.0, 1.0))


def test_parameters_survive_the_recipe_file():
    params = MaskParams(strokes=(2, 3), dilation=(0.01, 0.02), rotation=(-10.0, 10.0))
    assert MaskParams.from_dict(json.loads(json.dumps(params.to_dict()))) == params


def test_sizes_below_64_are_refused():
    assert parse_size("640x480") == (480, 640)
    assert parse_size("96") == (96, 96)
    with pytest.raises(ConfigError, match="64"):
        parse_size("32")
    with pytest.raises(ConfigError, match="64"):
        write_mask_set("unused", MaskSetSpec(size=(32, 32), count=1))


# ----------------------------------------------------------------------------- steering


@pytest.mark.parametrize("band", range(6))
def test_steered_masks_land_in_their_band_with_few_rejected_draws(band):
    lo, hi = PAPER_BAND_EDGES[band], PAPER_BAND_EDGES[band + 1]
    draws = []
    for seed in range(5):
        sample = sample_mask(seed, 64, band=(lo, hi), margin=3)
        assert lo < hole_ratio(sample.valid) <= hi
        assert sample.hole_ratio == hole_ratio(sample.valid)
        assert sample.valid[:3].all() and sample.valid[:, -3:].all()
        draws.append(sample.draws)
    assert np.mean(draws) < 15


def test_unreachable_band_fails_after_bounded_attempts():
    thin = MaskParams(strokes=(1, 1), stroke_width=(0.01, 0.01), circles=(0, 0), arcs=(0, 0),
                      dilation=(0, 0), crop=(1, 1))
    with pytest.raises(ConfigError, match=r"\(0.9,1.0\].*20 attempts"):
        sample_mask(0, 64, thin, band=(0.9, 1.0), max_attempts=20)


def test_unreachable_band_leaves_no_folder(tmp_path):
    thin = MaskParams(strokes=(1, 1), stroke_width=(0.01, 0.01), circles=(0, 0), arcs=(0, 0),
                      dilation=(0, 0))
    spec = tiny_spec(params=thin, edges=(0.9, 1.0), max_attempts=10)
    with pytest.raises(ConfigError):
        write_mask_set(tmp_path / "set", spec)
    assert not (tmp_path / "set").exists()


# ----------------------------------------------------------------------------- transform


def test_transform_without_augmentation_is_the_identity():
    valid = generate_mask(np.random.default_rng(1), (80, 96))
    out = transform_mask(np.random.default_rng(2), valid, IDENTITY)
    assert np.array_equal(out, valid)


def test_dilation_only_grows_the_holes():
    valid = generate_mask(np.random.default_rng(1), 96, MaskParams(strokes=(1, 1)))
    grown = transform_mask(np.random.default_rng(2), valid,
                           MaskParams(dilation=(0.05, 0.05), rotation=(0, 0), crop=(1, 1)))
    assert not (grown & ~valid).any()  # every old hole is still a hole
    assert hole_ratio(grown) > hole_ratio(valid)


def test_transform_rescales_to_the_requested_size():
    valid = generate_mask(np.random.default_rng(1), (120, 160))
    out = transform_mask(np.random.default_rng(2), valid, MaskParams(), size=(64, 64))
    assert out.shape == (64, 64) and out.dtype == np.bool_


# ----------------------------------------------------------------------------- mask sets


def test_files_are_8bit_single_channel_png_with_white_holes(tmp_path):
    write_mask_set(tmp_path, tiny_spec())
    rows = read_manifest(tmp_path)
    assert len(rows) == 12  # 6 bands × (border, no-border)
    for row in rows:
        with Image.open(row.path) as img:
            assert img.format == "PNG" and img.mode == "L"
            pixels = np.asarray(img)
        assert set(np.unique(pixels)) <= {0, 255}
        assert (pixels == 255).sum() == row.hole_pixels  # white = hole


def test_manifest_matches_the_pixels(tmp_path):
    write_mask_set(tmp_path, tiny_spec(per_band=2))
    with open(tmp_path / "masks.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:5] == ["file", "hole_ratio", "band", "border", "seed"]
    for row in read_manifest(tmp_path):
        valid = load_mask(row.path)
        ratio = hole_ratio(valid)
        assert row.hole_ratio == ratio
        b = band_of(ratio)
        assert row.band == band_label(PAPER_BAND_EDGES[b], PAPER_BAND_EDGES[b + 1])
        assert row.file.startswith("border/" if row.border else "no-border/")


def test_every_no_border_mask_keeps_its_margin(tmp_path):
    write_mask_set(tmp_path, tiny_spec(per_band=2, margin=5))
    no_border = [r for r in read_manifest(tmp_path) if not r.border]
    assert len(no_border) == 12
    for row in no_border:
        v = load_mask(row.path)
        assert v[:5].all() and v[-5:].all() and v[:, :5].all() and v[:, -5:].all()
    assert json.loads((tmp_path / "masks.json").read_text())["recipe"]["margin"] == 5


def test_each_border_set_has_its_own_manifest(tmp_path):
    write_mask_set(tmp_path, tiny_spec())
    for folder, border in (("border", True), ("no-border", False)):
        rows = read_manifest(tmp_path / folder)
        assert len(rows) == 6 and all(r.border is border for r in rows)
        assert all(r.path.is_file() for r in rows)


def test_exactly_n_masks_in_each_band(tmp_path):
    write_mask_set(tmp_path, tiny_spec(per_band=3, edges=(0.05, 0.15, 0.3), borders=(True,)))
    bands = [r.band for r in read_manifest(tmp_path)]
    assert bands.count("(0.05,0.15]") == 3 and bands.count("(0.15,0.3]") == 3


def test_a_mask_can_be_regenerated_from_its_manifest_seed(tmp_path):
    spec = tiny_spec(borders=(False,))
    write_mask_set(tmp_path, spec)
    row = read_manifest(tmp_path)[4]
    lo, hi = PAPER_BAND_EDGES[4], PAPER_BAND_EDGES[5]
    again = sample_mask(row.seed, spec.size, spec.params, band=(lo, hi),
                        margin=spec.resolved_margin())
    assert np.array_equal(again.valid, load_mask(row.path))


@pytest.mark.slow
def test_files_do_not_depend_on_the_worker_count(tmp_path):
    spec = tiny_spec(per_band=3)  # 36 masks: enough for the writer to start a pool
    write_mask_set(tmp_path / "one", spec, workers=1)
    write_mask_set(tmp_path / "two", spec, workers=2)
    one, two = files_bytes(tmp_path / "one"), files_bytes(tmp_path / "two")
    assert len(one) == 36 and one == two
    assert (tmp_path / "one/masks.csv").read_bytes() == (tmp_path / "two/masks.csv").read_bytes()


def test_rerun_keeps_finished_files_and_redoes_missing_ones(tmp_path):
    spec = tiny_spec(count=8, per_band=None, borders=(True,))
    write_mask_set(tmp_path, spec)
    before = files_bytes(tmp_path)
    (tmp_path / "000003.png").unlink()
    summary = write_mask_set(tmp_path, spec)
    assert (summary.generated, summary.skipped) == (1, 7)
    assert files_bytes(tmp_path) == before


def test_more_masks_extend_an_existing_set(tmp_path):
    spec = tiny_spec(count=4, per_band=None, borders=(True,))
    write_mask_set(tmp_path, spec)
    before = files_bytes(tmp_path)
    summary = write_mask_set(tmp_path, tiny_spec(count=6, per_band=None, borders=(True,)))
    assert (summary.generated, summary.skipped) == (2, 4)
    after = files_bytes(tmp_path)
    assert {k: after[k] for k in before} == before


def test_rerun_with_other_settings_is_refused(tmp_path):
    write_mask_set(tmp_path, tiny_spec(count=2, per_band=None))
    with pytest.raises(ConfigError, match="other settings"):
        write_mask_set(tmp_path, tiny_spec(count=2, per_band=None, seed=8))
    write_mask_set(tmp_path, tiny_spec(count=2, per_band=None, seed=8), overwrite=True)


def test_rerun_with_other_border_sets_is_refused(tmp_path):
    write_mask_set(tmp_path, tiny_spec(count=2, per_band=None, borders=(False,)))
    with pytest.raises(ConfigError, match="other settings"):
        write_mask_set(tmp_path, tiny_spec(count=2, per_band=None, borders=(True,)))


def test_unwritable_output_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="cannot write"):
        write_mask_set(blocker / "masks", tiny_spec(count=2, per_band=None))
    assert blocker.read_text() == "not a folder"


# ----------------------------------------------------------------------------- --from


def write_black_hole_sources(folder, n=3, shape=(72, 80)):
    """Source masks in the NVIDIA training polarity (black = hole); returns their valid masks."""
    folder.mkdir()
    valids = []
    for i in range(n):
        valid = generate_mask(np.random.default_rng(10 + i), shape)
        Image.fromarray(np.where(valid, 255, 0).astype(np.uint8)).save(folder / f"{i:03d}.png")
        valids.append(valid)
    return valids


def test_from_with_invert_reads_black_holes(tmp_path):
    valids = write_black_hole_sources(tmp_path / "src")
    spec = MaskSetSpec(size=(72, 80), params=IDENTITY, source=tmp_path / "src", invert=True)
    write_mask_set(tmp_path / "out", spec)
    rows = read_manifest(tmp_path / "out")
    assert [r.source for r in rows] == ["000.png", "001.png", "002.png"]
    for row, valid in zip(rows, valids, strict=True):
        assert np.array_equal(load_mask(row.path), valid)  # written back white = hole


def test_from_without_invert_swaps_holes_and_valid_pixels(tmp_path):
    valids = write_black_hole_sources(tmp_path / "src", n=1)
    spec = MaskSetSpec(size=(72, 80), params=IDENTITY, source=tmp_path / "src")
    write_mask_set(tmp_path / "out", spec)
    assert np.array_equal(load_mask(read_manifest(tmp_path / "out")[0].path), ~valids[0])


def test_from_masks_are_steered_into_bands(tmp_path):
    write_black_hole_sources(tmp_path / "src", n=4)
    spec = MaskSetSpec(size=(64, 64), per_band=2, source=tmp_path / "src", invert=True,
                       borders=(False,), margin=4)
    write_mask_set(tmp_path / "out", spec)
    rows = read_manifest(tmp_path / "out")
    assert len(rows) == 12
    for row in rows:
        valid = load_mask(row.path)
        assert band_of(hole_ratio(valid)) == int(row.file[4]) - 1  # band<k>_ file names
        assert valid[:4].all() and valid[:, -4:].all()


def test_from_an_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(InputError, match="no mask images"):
        write_mask_set(tmp_path / "out", MaskSetSpec(size=(64, 64), source=tmp_path / "src"))


# ----------------------------------------------------------------------------- preview


def test_preview_writes_only_the_sheet(tmp_path):
    shown = preview_sheet(tmp_path / "sheet.png", tiny_spec(per_band=2), count=12)
    assert len(shown) == 12
    assert all(0 < ratio <= 0.6 for _, ratio in shown)
    with Image.open(tmp_path / "sheet.png") as img:
        assert img.format == "PNG" and img.width > 64
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.png"]


# ----------------------------------------------------------------------------- package


def test_the_package_imports_without_heavy_libraries():
    # Commands that only parse sizes or bands import this package; the damage synthesiser
    # (thin masks) and scipy (--from masks) load when a set needs them.
    code = ("import json, sys, pconv_cli.masks\n"
            "print(json.dumps([m for m in ('torch', 'scipy', 'pconv_cli.damage') "
            "if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_a_single_worker_run_leaves_no_job_in_the_process(tmp_path):
    from pconv_cli.masks import sets

    write_mask_set(tmp_path, tiny_spec(count=2, per_band=None, borders=(True,)))
    assert sets._worker_job is None
