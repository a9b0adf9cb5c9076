"""The inpainting loss (Liu et al. 2018, §3.3), term by term, against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pconv_cli.core import (
    InpaintingLoss,
    LossWeights,
    gram_matrix,
    hole_border_region,
    total_variation,
)

PIXEL_ONLY = LossWeights(perceptual=0.0, style=0.0)


class ThreeLevelFeatures(nn.Module):
    """A fixed 1×1 convolution 3 → 2, then the map at full, 1/2 and 1/4 resolution."""

    WEIGHT = np.array([[1.0, -2.0, 0.5], [0.0, 1.0, 3.0]])

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor(self.WEIGHT).view(2, 3, 1, 1))
        self.conv.requires_grad_(False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        y = self.conv(image)
        return [y, F.avg_pool2d(y, 2), F.avg_pool2d(y, 4)]


def numpy_features(image: np.ndarray) -> list[np.ndarray]:
    y = np.einsum("oc,nchw->nohw", ThreeLevelFeatures.WEIGHT, image)

    def pool(a: np.ndarray, k: int) -> np.ndarray:
        n, c, h, w = a.shape
        return a.reshape(n, c, h // k, k, w // k, k).mean(axis=(3, 5))

    return [y, pool(y, 2), pool(y, 4)]


def numpy_gram(f: np.ndarray) -> np.ndarray:
    n, c, h, w = f.shape
    gram = np.zeros((n, c, c))
    for b in range(n):
        for i in range(c):
            for j in range(c):
                gram[b, i, j] = (f[b, i] * f[b, j]).sum() / (c * h * w)
    return gram


def dilated_holes(mask: np.ndarray) -> np.ndarray:
    """P by brute force: a pixel is in P if its 3×3 neighbourhood holds a hole pixel."""
    n, _, h, w = mask.shape
    region = np.zeros((n, h, w), dtype=bool)
    for b in range(n):
        for i in range(h):
            for j in range(w):
                window = mask[b, 0, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]
                region[b, i, j] = bool((window == 0).any())
    return region


def brute_force_tv(comp: np.ndarray, region: np.ndarray) -> float:
    n, c, h, w = comp.shape
    total = 0.0
    for b in range(n):
        for i in range(h):
            for j in range(w):
                if not region[b, i, j]:
                    continue
                if j + 1 < w and region[b, i, j + 1]:
                    total += np.abs(comp[b, :, i, j + 1] - comp[b, :, i, j]).sum()
                if i + 1 < h and region[b, i + 1, j]:
                    total += np.abs(comp[b, :, i + 1, j] - comp[b, :, i, j]).sum()
    return total / comp.size


def random_case(seed: int = 0, n: int = 2, size: int = 8):
    g = torch.Generator().manual_seed(seed)
    output = torch.rand(n, 3, size, size, generator=g, dtype=torch.float64)
    target = torch.rand(n, 3, size, size, generator=g, dtype=torch.float64)
    mask = (torch.rand(n, 1, size, size, generator=g) > 0.4).double()
    return output, target, mask


def test_default_weights_are_the_papers():
    weights = LossWeights()

    assert (weights.valid, weights.hole, weights.perceptual, weights.style, weights.tv) == (
        1.0, 6.0, 0.05, 120.0, 0.1)


def test_valid_and_hole_terms_on_hand_computed_example():
    output = torch.zeros(1, 3, 2, 2)
    target = torch.full((1, 3, 2, 2), 0.5)
    target[..., 0, 1] = 1.0
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])

    terms = InpaintingLoss(PIXEL_ONLY)(output, target, mask)

    # 9 valid elements off by 0.5, 3 hole elements off by 1.0, N_Igt = 12.
    assert terms["valid"].item() == pytest.approx(9 * 0.5 / 12)
    assert terms["hole"].item() == pytest.approx(3 * 1.0 / 12)


def test_valid_and_hole_terms_match_brute_force_sums():
    output, target, mask = random_case(1)
    o, t, m = output.numpy(), target.numpy(), mask.numpy()
    n, c, h, w = o.shape
    valid_sum = hole_sum = 0.0
    for b in range(n):
        for ch in range(c):
            for i in range(h):
                for j in range(w):
                    d = abs(o[b, ch, i, j] - t[b, ch, i, j])
                    if m[b, 0, i, j] == 1:
                        valid_sum += d
                    else:
                        hole_sum += d

    terms = InpaintingLoss(PIXEL_ONLY)(output, target, mask)

    assert terms["valid"].item() == pytest.approx(valid_sum / o.size, rel=1e-6)
    assert terms["hole"].item() == pytest.approx(hole_sum / o.size, rel=1e-6)


def test_hole_border_region_is_the_one_pixel_dilation_of_the_holes():
    mask = torch.ones(1, 1, 6, 7)
    mask[0, 0, 2, 3] = 0
    mask[0, 0, 5, 0] = 0  # at the border: the dilation is clipped, not wrapped

    region = hole_border_region(mask)

    expected = torch.zeros(1, 1, 6, 7)
    expected[0, 0, 1:4, 2:5] = 1
    expected[0, 0, 4:6, 0:2] = 1
    assert torch.equal(region, expected)


def test_tv_on_hand_computed_example():
    comp = torch.arange(16.0).view(1, 1, 4, 4).expand(1, 3, 4, 4)  # value 4·row + col
    mask = torch.ones(1, 1, 4, 4)
    mask[0, 0, 1, 1] = 0  # P = rows 0..2 × cols 0..2

    tv = total_variation(comp, hole_border_region(mask))

    # Inside P: 3 rows × 2 horizontal pairs of difference 1 and 2 × 3 vertical pairs of
    # difference 4, per channel; N_Icomp = 3·16.
    assert tv.item() == pytest.approx(3 * (6 * 1 + 6 * 4) / 48)


def test_tv_matches_brute_force_on_random_masks():
    _, target, mask = random_case(2, size=9)
    mask[:, :, :2, :] = 0  # holes on the border too
    comp = target.numpy()

    tv = total_variation(target, hole_border_region(mask))

    # total_variation works in fp32: agreement to fp32 rounding.
    assert tv.item() == pytest.approx(brute_force_tv(comp, dilated_holes(mask.numpy())), rel=1e-6)


def test_tv_ignores_pixels_outside_the_dilated_holes():
    _, comp, _ = random_case(3)
    mask = torch.ones(2, 1, 8, 8)
    mask[:, :, 2:4, 2:5] = 0  # P = rows 1..4 × cols 1..5
    region = hole_border_region(mask)
    changed = comp.clone()
    changed[..., 6:, :] = 5.0
    changed[..., :, 7] = -5.0
    changed[..., 0, 0] = 9.0
    touched = comp.clone()
    touched[..., 1, 1] = 9.0

    assert total_variation(changed, region).item() == total_variation(comp, region).item()
    assert total_variation(touched, region).item() != total_variation(comp, region).item()


def test_tv_term_of_the_loss_is_on_the_composite():
    output, target, mask = random_case(4)
    comp = mask * target + (1 - mask) * output

    terms = InpaintingLoss(PIXEL_ONLY)(output, target, mask)

    expected = brute_force_tv(comp.numpy(), dilated_holes(mask.numpy()))
    assert terms["tv"].item() == pytest.approx(expected, rel=1e-6)


def test_gram_matrix_on_hand_computed_example():
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # N=1, C=2, H=1, W=2

    gram = gram_matrix(features)

    # ΨΨᵀ = [[5, 11], [11, 25]], K = 1/(C·H·W) = 1/4
    assert torch.equal(gram, torch.tensor([[[1.25, 2.75], [2.75, 6.25]]]))


def test_gram_matrix_of_large_fp16_features_is_finite_fp32():
    features = torch.full((1, 4, 64, 64), 300.0, dtype=torch.float16)  # Σ = 3.7e8 > fp16 max

    gram = gram_matrix(features)

    assert gram.dtype == torch.float32
    torch.testing.assert_close(gram, torch.full((1, 4, 4), 300.0**2 / 4))


def test_gram_matrix_stays_fp32_under_autocast():
    features = torch.rand(2, 8, 16, 16) * 10

    with torch.autocast("cpu", dtype=torch.bfloat16):
        gram = gram_matrix(features)

    assert gram.dtype == torch.float32
    torch.testing.assert_close(gram, numpy_gram_t(features), rtol=1e-5, atol=1e-5)


def numpy_gram_t(features: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(numpy_gram(features.double().numpy())).float()


def test_perceptual_and_style_terms_match_hand_computation():
    output, target, mask = random_case(5)
    comp = (mask * target + (1 - mask) * output).numpy()
    f_out = numpy_features(output.numpy())
    f_comp = numpy_features(comp)
    f_gt = numpy_features(target.numpy())
    perceptual = sum(np.abs(a - g).mean() + np.abs(c - g).mean()
                     for a, c, g in zip(f_out, f_comp, f_gt, strict=True))
    style_out = sum(np.abs(numpy_gram(a) - numpy_gram(g)).mean()
                    for a, g in zip(f_out, f_gt, strict=True))
    style_comp = sum(np.abs(numpy_gram(c) - numpy_gram(g)).mean()
                     for c, g in zip(f_comp, f_gt, strict=True))

    loss = InpaintingLoss(feature_extractor=ThreeLevelFeatures().double())
    terms = loss(output, target, mask)

    assert terms["perceptual"].item() == pytest.approx(perceptual, rel=1e-5)
    assert terms["style_out"].item() == pytest.approx(style_out, rel=1e-5)
    assert terms["style_comp"].item() == pytest.approx(style_comp, rel=1e-5)


def test_total_is_the_weighted_sum_of_the_terms():
    output, target, mask = random_case(6)

    terms = InpaintingLoss(feature_extractor=ThreeLevelFeatures().double())(output, target, mask)

    expected = (terms["valid"] + 6 * terms["hole"] + 0.05 * terms["perceptual"]
                + 120 * (terms["style_out"] + terms["style_comp"]) + 0.1 * terms["tv"])
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert all(terms[k].item() > 0 for k in ("valid", "hole", "perceptual", "style_out",
                                             "style_comp", "tv"))


def test_custom_weights_are_applied():
    output, target, mask = random_case(7)
    weights = LossWeights(valid=2.0, hole=0.5, perceptual=3.0, style=7.0, tv=11.0)

    terms = InpaintingLoss(weights, feature_extractor=ThreeLevelFeatures().double())(
        output, target, mask)

    expected = (2 * terms["valid"] + 0.5 * terms["hole"] + 3 * terms["perceptual"]
                + 7 * (terms["style_out"] + terms["style_comp"]) + 11 * terms["tv"])
    assert terms["total"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_pixel_only_loss_builds_no_feature_network_and_reports_zero_feature_terms(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # nothing cached: VGG would be an error
    monkeypatch.delenv("PCONV_VGG_WEIGHTS", raising=False)
    output, target, mask = random_case(8)

    loss = InpaintingLoss(PIXEL_ONLY, allow_download=False)
    terms = loss(output, target, mask)

    assert loss.features is None
    assert terms["perceptual"].item() == terms["style_out"].item() == 0.0
    assert terms["total"].item() == pytest.approx(
        (terms["valid"] + 6 * terms["hole"] + 0.1 * terms["tv"]).item())


def test_difference_terms_are_zero_when_output_equals_target():
    _, target, mask = random_case(9)

    terms = InpaintingLoss(feature_extractor=ThreeLevelFeatures().double())(
        target.clone(), target, mask)

    for name in ("valid", "hole", "perceptual", "style_out", "style_comp"):
        assert terms[name].item() == pytest.approx(0.0, abs=1e-6), name  # fp32 composite
    # TV is a smoothness prior on the composite, not a difference to the target.
    assert terms["tv"].item() > 0


def test_gradient_of_pixel_terms_reaches_output_in_holes_and_valid_region():
    output, target, mask = random_case(10)
    output.requires_grad_(True)

    InpaintingLoss(PIXEL_ONLY)(output, target, mask)["total"].backward()

    hole = (mask == 0).expand_as(output)
    assert bool((output.grad[hole] != 0).all())
    assert bool((output.grad[~hole] != 0).all())


def test_loss_leaves_its_inputs_unchanged():
    output, target, mask = random_case(11)
    copies = [t.clone() for t in (output, target, mask)]

    InpaintingLoss(feature_extractor=ThreeLevelFeatures().double())(output, target, mask)

    assert all(torch.equal(a, b) for a, b in zip((output, target, mask), copies, strict=True))


def test_bf16_autocast_on_cpu_gives_finite_loss_close_to_fp32():
    g = torch.Generator().manual_seed(12)
    output = torch.rand(2, 3, 16, 16, generator=g, requires_grad=True)
    target = torch.rand(2, 3, 16, 16, generator=g)
    mask = (torch.rand(2, 1, 16, 16, generator=g) > 0.3).float()
    loss = InpaintingLoss(feature_extractor=ThreeLevelFeatures())

    expected = loss(output, target, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = loss(output, target, mask)
    terms["total"].backward()

    assert all(bool(torch.isfinite(v)) for v in terms.values())
    assert bool(torch.isfinite(output.grad).all())
    for name in ("perceptual", "style_out", "style_comp", "total"):
        assert terms[name].item() == pytest.approx(expected[name].item(), rel=0.03), name


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_autocast_on_cuda_gives_finite_style_loss_for_large_features():
    g = torch.Generator().manual_seed(13)
    output = (torch.rand(2, 3, 64, 64, generator=g) * 400).cuda()  # Gram sums beyond fp16 max
    target = (torch.rand(2, 3, 64, 64, generator=g) * 400).cuda()
    mask = (torch.rand(2, 1, 64, 64, generator=g) > 0.3).float().cuda()
    loss = InpaintingLoss(feature_extractor=ThreeLevelFeatures()).cuda()

    expected = loss(output, target, mask)
    with torch.autocast("cuda", dtype=torch.float16):
        terms = loss(output, target, mask)

    assert all(bool(torch.isfinite(v)) for v in terms.values())
    assert terms["style_out"].item() == pytest.approx(expected["style_out"].item(), rel=0.01)
