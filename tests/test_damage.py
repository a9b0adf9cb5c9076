"""The damage synthesiser: exact masks, reproducibility, thin widths, artefacts, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from pconv_cli.damage import (
    DAMAGE_WEIGHTS,
    DEGRADATION_CHANCES,
    IMAGE_KIND_WEIGHTS,
    THIN_WEIGHTS,
    DamageParams,
    ThinHoleParams,
    damage_seed,
    synthesise,
    thin_hole_mask,
)
from pconv_cli.damage.artefacts import ARTEFACTS_ENV, load_alpha
from pconv_cli.damage.geometry import smooth_noise_2d
from pconv_cli.damage.layers import SOFT_VISIBLE
from pconv_cli.errors import ConfigError, InputError

REAL_ARTEFACTS = Path(__file__).resolve().parents[2] / "shared" / "damage-artefacts"
THIN_STROKES = ["scratch", "curved_scratch", "hair", "crack"]
NO_EXTRAS = {"degradations": {}, "image_kinds": {"colour": 1.0}}


def photo(h: int = 160, w: int = 160, seed: int = 0) -> np.ndarray:
    """Mid-tone colour texture: every kind of damage shows on it."""
    rng = np.random.default_rng(seed)
    channels = [smooth_noise_2d(rng, (h, w), 12) for _ in range(3)]
    return np.clip(0.5 + 0.3 * np.stack(channels, axis=-1), 0, 1).astype(np.float32)


def only(kind: str, count: int = 3, **extra) -> DamageParams:
    return DamageParams(kinds={kind: 1.0}, count=(count, count), **{**NO_EXTRAS, **extra})


@pytest.fixture(scope="module")
def artefact_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny artefact set: curved hairs and round dots, white with a soft alpha."""
    root = tmp_path_factory.mktemp("artefacts")
    for name, draw_shape in (
        ("hair", lambda d, i: d.arc((20, 20 + i, 180, 160), 200, 330, fill=255, width=3)),
        ("dots", lambda d, i: d.ellipse((60, 60, 100 + 10 * i, 100), fill=255)),
    ):
        (root / name).mkdir()
        for i in range(3):
            alpha = Image.new("L", (200, 200), 0)
            draw_shape(ImageDraw.Draw(alpha), i)
            rgba = Image.new("RGBA", (200, 200), (255, 255, 255, 0))
            rgba.putalpha(alpha)
            rgba.save(root / name / f"{name}-{i}.png")
    return root


# --------------------------------------------------------------------------- exact masks


@pytest.mark.parametrize("kind", list(DAMAGE_WEIGHTS))
def test_mask_is_exactly_the_changed_pixels(kind: str, artefact_folder: Path) -> None:
    image = photo()
    damaged = synthesise(image, np.random.default_rng(1), only(kind, artefacts=artefact_folder))
    changed = (damaged.image != image).any(axis=-1)
    assert damaged.hole.any(), f"{kind} drew nothing"
    np.testing.assert_array_equal(changed, damaged.hole)


@pytest.mark.parametrize("image_kind", list(IMAGE_KIND_WEIGHTS))
def test_mask_is_the_change_over_the_image_kind(image_kind: str) -> None:
    params = DamageParams(count=(6, 6), degradations={}, image_kinds={image_kind: 1.0})
    damaged = synthesise(photo(), np.random.default_rng(2), params)
    assert damaged.image_kind == image_kind
    np.testing.assert_array_equal((damaged.image != damaged.base).any(axis=-1), damaged.hole)


def test_a_bw_print_is_grey_and_a_sepia_print_is_warm() -> None:
    image = photo()
    bw = synthesise(image, np.random.default_rng(3), DamageParams(
        count=(0, 0), degradations={}, image_kinds={"bw_print": 1.0})).base
    sepia = synthesise(image, np.random.default_rng(3), DamageParams(
        count=(0, 0), degradations={}, image_kinds={"sepia_print": 1.0})).base
    assert np.ptp(bw - bw.mean(axis=-1, keepdims=True), axis=-1).max() < 0.05
    assert (sepia[..., 0] > sepia[..., 2]).all()


@pytest.mark.parametrize("kind", ["foxing", "mould", "tape"])
def test_soft_stains_mark_only_visible_change(kind: str) -> None:
    image = photo()
    damaged = synthesise(image, np.random.default_rng(4), only(kind))
    change = np.abs(damaged.image - image).max(axis=-1)
    assert damaged.hole.any()
    # the marked rim is where the stain shows, not where its soft alpha fades out unseen
    assert change[damaged.hole].min() >= SOFT_VISIBLE - 1e-6


def test_a_stain_on_black_changes_and_marks_nothing() -> None:
    black = np.zeros((96, 96, 3), np.float32)
    damaged = synthesise(black, np.random.default_rng(5), only("foxing", count=5))
    assert not damaged.hole.any()
    assert (damaged.image == 0).all()


@pytest.mark.parametrize("name", list(DEGRADATION_CHANCES))
def test_degradations_change_pixels_but_not_the_mask(name: str) -> None:
    image = photo()
    plain = synthesise(image, np.random.default_rng(6), DamageParams(count=(4, 4), **NO_EXTRAS))
    degraded = synthesise(image, np.random.default_rng(6), DamageParams(
        count=(4, 4), degradations={name: 1.0}, image_kinds={"colour": 1.0}))
    assert degraded.degradations == (name,)
    np.testing.assert_array_equal(plain.hole, degraded.hole)
    outside = ~plain.hole
    assert (degraded.image[outside] != image[outside]).mean() > 0.3


# --------------------------------------------------------------------------- reproducibility


def test_same_seed_gives_identical_output(artefact_folder: Path) -> None:
    params = DamageParams(count=(10, 10), artefacts=artefact_folder,
                          degradations=dict.fromkeys(DEGRADATION_CHANCES, 0.5))
    image = photo(120, 150)
    a = synthesise(image, np.random.default_rng(damage_seed(7, 3)), params)
    b = synthesise(image, np.random.default_rng(damage_seed(7, 3)), params)
    c = synthesise(image, np.random.default_rng(damage_seed(7, 4)), params)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.hole, b.hole)
    assert (a.kinds, a.degradations) == (b.kinds, b.degradations)
    assert not np.array_equal(a.hole, c.hole)


def test_thin_hole_masks_repeat_with_their_seed() -> None:
    a = thin_hole_mask((128, 96), np.random.default_rng(8))
    b = thin_hole_mask((128, 96), np.random.default_rng(8))
    c = thin_hole_mask((128, 96), np.random.default_rng(9))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_damage_seeds_are_stable_and_distinct() -> None:
    assert damage_seed(0, 1) == damage_seed(0, 1)
    assert len({damage_seed(0, i) for i in range(100)} | {damage_seed(1, 0)}) == 101
    assert 0 <= damage_seed(2**40, 5) < 2**63


# --------------------------------------------------------------------------- thin widths


def widest(hole: np.ndarray) -> float:
    """Diameter of the largest disc inside the mask, in the pixel count a ruler would give:
    a band W px wide has its deepest pixel about (W + 1) / 2 from the background."""
    return 2 * float(ndimage.distance_transform_edt(hole).max()) - 1


@pytest.mark.parametrize("kind", THIN_STROKES)
def test_thin_strokes_are_one_to_four_pixels_wide(kind: str) -> None:
    image = photo(200, 200)
    for seed in range(8):
        damaged = synthesise(image, np.random.default_rng(seed), only(kind, count=1))
        assert damaged.hole.any()
        assert 1 <= widest(damaged.hole) <= 4, f"{kind}, seed {seed}"


def test_thin_strokes_follow_the_width_parameter() -> None:
    image = photo(200, 200)
    for seed in range(4):
        hairline = synthesise(image, np.random.default_rng(seed),
                              only("scratch", count=1, line_width=(1.0, 1.0)))
        assert widest(hairline.hole) == 1


def test_dust_specks_are_at_most_six_pixels_across() -> None:
    for seed in range(5):
        damaged = synthesise(photo(), np.random.default_rng(seed), only("dust", count=1))
        labels, count = ndimage.label(damaged.hole)
        assert count >= 3  # a scatter, not one blob
        assert widest(damaged.hole) <= 6


def test_thin_hole_masks_are_thin() -> None:
    for seed in range(10):
        hole = thin_hole_mask((192, 192), np.random.default_rng(seed),
                              ThinHoleParams(count=(1, 1)))
        assert hole.dtype == np.bool_ and hole.shape == (192, 192)
        assert hole.any()
        assert widest(hole) <= 6  # strokes up to 4 px, specks up to 6


# --------------------------------------------------------------------------- artefacts


def test_artefacts_come_from_the_folder_with_their_alpha(artefact_folder: Path) -> None:
    params = DamageParams(kinds={"artefact": 1.0}, count=(1, 1), artefacts=artefact_folder,
                          artefact_classes={"dots": 1.0}, artefact_extent=(0.3, 0.3),
                          artefact_opacity=(1.0, 1.0), **NO_EXTRAS)
    image = photo(200, 200)
    damaged = synthesise(image, np.random.default_rng(10), params)
    assert damaged.kinds == ("artefact",)
    # a dot scaled to 30 % of the side: a filled round blob about 60 px across, or its part
    labels, count = ndimage.label(damaged.hole)
    assert count == 1
    assert 300 < damaged.hole.sum() <= np.pi * 35**2


def test_the_artefact_folder_falls_back_to_the_environment(
    artefact_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = DamageParams(kinds={"artefact": 1.0}, count=(2, 2), **NO_EXTRAS)
    monkeypatch.delenv(ARTEFACTS_ENV, raising=False)
    with pytest.raises(ConfigError, match="nothing to draw"):
        synthesise(photo(), np.random.default_rng(11), params)
    monkeypatch.setenv(ARTEFACTS_ENV, str(artefact_folder))
    assert synthesise(photo(), np.random.default_rng(11), params).hole.any()


def test_thin_hole_masks_use_artefacts_when_given(artefact_folder: Path) -> None:
    params = ThinHoleParams(kinds={"artefact": 1.0}, count=(1, 1), artefacts=artefact_folder,
                            artefact_classes={"hair": 1.0})
    for seed in range(4):
        hole = thin_hole_mask((200, 200), np.random.default_rng(seed), params)
        assert hole.any()
        # a 3 px fibre, plus the faint rim resampling gives it
        assert widest(hole) <= 6


def test_unusable_artefact_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        synthesise(photo(), np.random.default_rng(0), only("artefact", artefacts=tmp_path / "x"))
    (tmp_path / "hair").mkdir()
    with pytest.raises(ConfigError, match="no PNG files"):
        synthesise(photo(), np.random.default_rng(0), only("artefact", artefacts=tmp_path))
    Image.new("RGB", (20, 20), "white").save(tmp_path / "hair" / "flat.png")
    with pytest.raises(InputError, match="alpha channel"):
        synthesise(photo(), np.random.default_rng(0), only("artefact", artefacts=tmp_path))


@pytest.mark.skipif(not REAL_ARTEFACTS.is_dir(), reason="../shared/damage-artefacts is absent")
def test_the_real_artefact_set_composites_exactly() -> None:
    for folder in sorted(p for p in REAL_ARTEFACTS.iterdir() if p.is_dir()):
        first = min(folder.glob("*.png"))
        alpha = load_alpha(first)
        assert alpha.max() > 0.5, first
    image = photo(256, 256)
    params = DamageParams(kinds={"artefact": 1.0}, count=(12, 12), artefacts=REAL_ARTEFACTS,
                          **NO_EXTRAS)
    damaged = synthesise(image, np.random.default_rng(13), params)
    assert damaged.hole.any()
    np.testing.assert_array_equal((damaged.image != image).any(axis=-1), damaged.hole)


# --------------------------------------------------------------------------- contract


def test_output_contract_at_an_odd_size(artefact_folder: Path) -> None:
    image = photo(97, 131).astype(np.float64)
    params = DamageParams(count=(15, 15), artefacts=artefact_folder,
                          degradations=dict.fromkeys(DEGRADATION_CHANCES, 1.0))
    damaged = synthesise(image, np.random.default_rng(14), params)
    assert damaged.image.shape == (97, 131, 3) and damaged.image.dtype == np.float32
    assert 0 <= damaged.image.min() and damaged.image.max() <= 1
    assert damaged.hole.shape == (97, 131) and damaged.hole.dtype == np.bool_
    np.testing.assert_array_equal(damaged.valid, ~damaged.hole)
    assert len(damaged.kinds) == 15
    assert damaged.degradations == tuple(DEGRADATION_CHANCES)
    assert image.dtype == np.float64 and (image == photo(97, 131)).all()  # input untouched


def test_parameters_round_trip_through_a_dict(artefact_folder: Path) -> None:
    params = DamageParams(count=(1, 2), artefacts=artefact_folder, kinds={"hair": 2.0})
    assert DamageParams.from_dict(params.to_dict()) == params
    assert ThinHoleParams.from_dict(ThinHoleParams().to_dict()) == ThinHoleParams()
    assert set(THIN_WEIGHTS) <= set(DAMAGE_WEIGHTS)


@pytest.mark.parametrize("bad", [
    {"kinds": {"smudge": 1.0}},
    {"kinds": {"hair": -1.0}},
    {"kinds": {"hair": "lots"}},
    {"count": (5, 2)},
    {"count": 3},
    {"line_width": (0.0, 2.0)},
    {"speck_size": (2.0, 100.0)},
    {"dark_share": 1.5},
    {"alpha_threshold": 1.0},
    {"artefact_opacity": (0.5, 1.5)},
    {"image_kinds": {"colour": 0.0}},
    {"image_kinds": {"daguerreotype": 1.0}},
    {"degradations": {"blur": 2.0}},
    {"degradations": {"scratches": 0.5}},
    {"artefacts": 42},
])
def test_bad_parameters_are_refused(bad: dict) -> None:
    with pytest.raises(ConfigError, match="damage parameter"):
        DamageParams(**bad)


def test_unknown_parameter_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown damage parameters: brightness"):
        DamageParams.from_dict({"brightness": 2})
    with pytest.raises(ConfigError, match="damage parameter kinds: unknown tape"):
        ThinHoleParams(kinds={"tape": 1.0})


@pytest.mark.parametrize("image, message", [
    (np.zeros((32, 32), np.float32), "H×W×3"),
    (np.zeros((32, 32, 4), np.float32), "H×W×3"),
    (np.zeros((32, 32, 3), np.uint8), "float in \\[0, 1\\]"),
    (np.full((32, 32, 3), 2.0, np.float32), "scale them"),
    (np.full((32, 32, 3), np.nan, np.float32), "scale them"),
    (np.zeros((4, 32, 3), np.float32), "too small"),
])
def test_bad_images_are_refused(image: np.ndarray, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        synthesise(image, np.random.default_rng(0))


def test_a_seed_instead_of_a_generator_is_refused() -> None:
    with pytest.raises(ConfigError, match="numpy Generator"):
        synthesise(photo(), 5)
    with pytest.raises(ConfigError, match="too small"):
        thin_hole_mask((4, 100), np.random.default_rng(0))
