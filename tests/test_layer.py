"""PartialConv2d against a per-pixel reference of the paper's formula (Liu et al. 2018, §3.1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pconv_cli.core import PartialConv2d
from pconv_cli.errors import ConfigError


def reference_partial_conv(
    x: np.ndarray,
    mask: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: int,
    padding: int,
    dilation: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """The paper's equations evaluated window by window, in float64.

    x' = Wᵀ(X ⊙ M) · sum(1)/sum(M) + b if sum(M) > 0, else 0;  m' = [sum(M) > 0].
    Zero padding makes the pixels outside the image holes.
    """
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    masked = x * mask  # a 1-channel mask broadcasts over the input channels
    pad = ((0, 0), (0, 0), (padding, padding), (padding, padding))
    masked = np.pad(masked, pad)
    mask_p = np.pad(mask, pad)
    window_elements = mask.shape[1] * kh * kw  # sum(1)
    h_out = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    w_out = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, c_out, h_out, w_out))
    new_mask = np.zeros((n, 1, h_out, w_out))
    for b in range(n):
        for i in range(h_out):
            for j in range(w_out):
                rows = slice(i * stride, i * stride + dilation * (kh - 1) + 1, dilation)
                cols = slice(j * stride, j * stride + dilation * (kw - 1) + 1, dilation)
                valid = mask_p[b, :, rows, cols].sum()  # sum(M)
                if valid == 0:
                    continue
                window = masked[b, :, rows, cols]
                response = np.tensordot(weight, window, axes=([1, 2, 3], [0, 1, 2]))
                out[b, :, i, j] = response * window_elements / valid
                if bias is not None:
                    out[b, :, i, j] += bias
                new_mask[b, 0, i, j] = 1.0
    return out, new_mask


def random_mask(
    rng: np.random.Generator, shape: tuple[int, ...], hole_fraction: float = 0.4
) -> np.ndarray:
    """Random holes, plus a hole strip along the top and left border of every channel."""
    mask = (rng.random(shape) >= hole_fraction).astype(np.float64)
    mask[..., :2, :] = 0.0
    mask[..., :, :1] = 0.0
    return mask


def make_layer(c_in: int, c_out: int, kernel: int, stride: int, padding: int, bias: bool,
               dilation: int = 1, seed: int = 0) -> PartialConv2d:
    torch.manual_seed(seed)
    layer = PartialConv2d(c_in, c_out, kernel, stride=stride, padding=padding,
                          dilation=dilation, bias=bias).double()
    if bias:
        with torch.no_grad():
            layer.bias.uniform_(-1.0, 1.0)  # nonzero, so a misplaced bias shows
    return layer


def run_layer(layer: PartialConv2d, x: np.ndarray, mask: np.ndarray):
    with torch.no_grad():
        out, new_mask = layer(torch.from_numpy(x), torch.from_numpy(mask))
    return out.numpy(), new_mask.numpy()


def reference_for(layer: PartialConv2d, x: np.ndarray, mask: np.ndarray):
    bias = None if layer.bias is None else layer.bias.detach().numpy()
    return reference_partial_conv(
        x, mask, layer.weight.detach().numpy(), bias,
        layer.stride[0], layer.padding[0], layer.dilation[0],
    )


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [3, 5, 7])
@pytest.mark.parametrize("mask_channels", ["one", "all"])
def test_layer_matches_per_pixel_reference(mask_channels, kernel, stride, bias):
    rng = np.random.default_rng(kernel * 10 + stride)
    c_in, c_out = 3, 4
    layer = make_layer(c_in, c_out, kernel, stride, kernel // 2, bias)
    x = rng.normal(size=(2, c_in, 11, 13))
    mask = random_mask(rng, (2, 1 if mask_channels == "one" else c_in, 11, 13))

    out, new_mask = run_layer(layer, x, mask)
    ref_out, ref_mask = reference_for(layer, x, mask)

    np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(new_mask, ref_mask)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation"),
    [(3, 1, 0, 2), (3, 2, 2, 1), (5, 3, 1, 1), (1, 1, 0, 1)],
    ids=["dilated", "padding_beyond_half_kernel", "stride_3", "kernel_1"],
)
def test_layer_matches_reference_for_other_geometries(kernel, stride, padding, dilation):
    rng = np.random.default_rng(7)
    layer = make_layer(2, 3, kernel, stride=stride, padding=padding, bias=True,
                       dilation=dilation)
    x = rng.normal(size=(1, 2, 12, 10))
    mask = random_mask(rng, (1, 2, 12, 10))

    out, new_mask = run_layer(layer, x, mask)
    ref_out, ref_mask = reference_for(layer, x, mask)

    np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(new_mask, ref_mask)


def test_window_without_valid_pixel_gives_zero_output_and_zero_mask():
    layer = make_layer(3, 5, 3, stride=1, padding=1, bias=True)
    x = np.random.default_rng(1).normal(size=(1, 3, 12, 12))
    mask = np.ones((1, 1, 12, 12))
    mask[..., 2:9, 3:10] = 0.0  # windows centred on rows 3..7, cols 4..8 see no valid pixel

    out, new_mask = run_layer(layer, x, mask)

    assert np.all(new_mask[0, 0, 3:8, 4:9] == 0.0)
    assert np.all(out[0, :, 3:8, 4:9] == 0.0)  # bias is not added there either
    assert new_mask.sum() == 144 - 25


def test_all_holes_give_all_zero_output_and_mask():
    layer = make_layer(3, 4, 5, stride=2, padding=2, bias=True)
    x = np.random.default_rng(2).normal(size=(2, 3, 16, 16))

    out, new_mask = run_layer(layer, x, np.zeros((2, 3, 16, 16)))

    assert not out.any()
    assert not new_mask.any()


def test_all_valid_mask_without_padding_equals_conv2d():
    layer = make_layer(4, 6, 5, stride=2, padding=0, bias=True)
    conv = nn.Conv2d(4, 6, 5, stride=2, padding=0).double()
    conv.load_state_dict(layer.state_dict())
    x = torch.randn(2, 4, 17, 19, dtype=torch.float64)

    with torch.no_grad():
        out, new_mask = layer(x, torch.ones(2, 1, 17, 19, dtype=torch.float64))
        expected = conv(x)

    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert bool((new_mask == 1).all())


def test_all_valid_mask_equals_conv2d_away_from_zero_padded_border():
    layer = make_layer(4, 6, 3, stride=1, padding=1, bias=True)
    conv = nn.Conv2d(4, 6, 3, stride=1, padding=1).double()
    conv.load_state_dict(layer.state_dict())
    x = torch.randn(1, 4, 10, 10, dtype=torch.float64)

    with torch.no_grad():
        out, _ = layer(x, torch.ones(1, 1, 10, 10, dtype=torch.float64))
        expected = conv(x)

    torch.testing.assert_close(out[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1],
                               rtol=1e-12, atol=1e-12)
    # At the border the zero padding counts as hole: a corner window sees 4 of 9 pixels.
    bias = layer.bias.view(1, -1)
    corner = (expected[..., 0, 0] - bias) * 9 / 4 + bias
    torch.testing.assert_close(out[..., 0, 0], corner, rtol=1e-12, atol=1e-12)


def test_state_dict_holds_only_conv2d_parameters():
    layer = PartialConv2d(3, 8, 5, padding=2)

    assert set(layer.state_dict()) == {"weight", "bias"}


@pytest.mark.parametrize("mask_channels", [1, 3])
def test_hole_pixel_values_do_not_change_output(mask_channels):
    rng = np.random.default_rng(3)
    layer = make_layer(3, 4, 5, stride=2, padding=2, bias=True)
    x = rng.normal(size=(2, 3, 16, 16))
    mask = random_mask(rng, (2, mask_channels, 16, 16))
    x_changed = np.where(np.broadcast_to(mask, x.shape) == 0, rng.normal(size=x.shape) * 1e3, x)
    assert not np.array_equal(x, x_changed)

    out, new_mask = run_layer(layer, x, mask)
    out_changed, new_mask_changed = run_layer(layer, x_changed, mask)

    np.testing.assert_array_equal(out, out_changed)
    np.testing.assert_array_equal(new_mask, new_mask_changed)


def test_gradient_does_not_reach_hole_pixels():
    layer = PartialConv2d(3, 4, 3, padding=1)
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    mask = torch.ones(1, 1, 8, 8)
    mask[..., 2:5, 3:7] = 0

    out, _ = layer(x, mask)
    out.square().sum().backward()

    assert bool((x.grad[:, :, 2:5, 3:7] == 0).all())
    assert bool((x.grad[:, :, mask[0, 0] == 1] != 0).any())


def test_gradients_match_finite_differences():
    torch.manual_seed(4)
    layer = PartialConv2d(2, 3, 3, stride=2, padding=1).double()
    x = torch.randn(1, 2, 7, 6, dtype=torch.float64, requires_grad=True)
    mask = torch.from_numpy(random_mask(np.random.default_rng(4), (1, 1, 7, 6)))

    def f(inp, weight, bias):
        return torch.func.functional_call(layer, {"weight": weight, "bias": bias}, (inp, mask))[0]

    weight = layer.weight.detach().clone().requires_grad_(True)
    bias = layer.bias.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (x, weight, bias))


def test_no_state_carries_over_between_calls_with_different_masks_and_shapes():
    rng = np.random.default_rng(5)
    layer = make_layer(3, 4, 3, stride=2, padding=1, bias=True)
    calls = [
        (rng.normal(size=(2, 3, 16, 16)), random_mask(rng, (2, 1, 16, 16))),
        (rng.normal(size=(1, 3, 9, 13)), random_mask(rng, (1, 3, 9, 13), 0.7)),
        (rng.normal(size=(3, 3, 16, 16)), np.ones((3, 1, 16, 16))),
        (rng.normal(size=(2, 3, 10, 6)), random_mask(rng, (2, 3, 10, 6), 0.2)),
    ]
    # First call again at the end: a cache keyed on shape or a remembered ratio would show.
    for x, mask in calls + calls[:1] + calls[2:3]:
        out, new_mask = run_layer(layer, x, mask)
        ref_out, ref_mask = reference_for(layer, x, mask)
        np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(new_mask, ref_mask)


def test_bool_mask_is_accepted_and_returned_as_bool():
    layer = PartialConv2d(3, 4, 3, padding=1)
    x = torch.randn(1, 3, 8, 8)
    mask = torch.rand(1, 1, 8, 8) > 0.5

    with torch.no_grad():
        out, new_mask = layer(x, mask)
        out_float, new_mask_float = layer(x, mask.float())

    assert new_mask.dtype == torch.bool
    assert torch.equal(new_mask.float(), new_mask_float)
    assert torch.equal(out, out_float)


def test_mask_with_wrong_channel_count_is_a_config_error():
    layer = PartialConv2d(4, 4, 3, padding=1)

    with pytest.raises(ConfigError, match="mask has 2 channels; expected 1 or 4"):
        layer(torch.randn(1, 4, 8, 8), torch.ones(1, 2, 8, 8))


def test_bf16_autocast_on_cpu_gives_finite_output_and_exact_mask():
    torch.manual_seed(6)
    layer = PartialConv2d(16, 32, 5, stride=2, padding=2)
    x = torch.randn(2, 16, 32, 32) * 50
    mask = torch.ones(2, 1, 32, 32)
    mask[:, :, 4:28, 2:30] = 0  # large hole: windows with 0 and with 1 valid pixel

    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, new_mask = layer(x, mask)
    ref_out, ref_mask = layer(x, mask)

    assert out.dtype == torch.bfloat16
    assert bool(torch.isfinite(out).all())
    assert torch.equal(new_mask, ref_mask)
    torch.testing.assert_close(out.float(), ref_out, rtol=0.05, atol=0.5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_autocast_on_cuda_gives_finite_output_and_exact_mask():
    torch.manual_seed(6)
    layer = PartialConv2d(16, 32, 7, stride=2, padding=3).cuda()
    x = torch.randn(2, 16, 64, 64, device="cuda") * 50
    mask = torch.ones(2, 1, 64, 64, device="cuda")
    mask[:, :, 4:60, 2:62] = 0

    with torch.autocast("cuda", dtype=torch.float16):
        out, new_mask = layer(x, mask)
    ref_out, ref_mask = layer(x, mask)

    assert out.dtype == torch.float16
    assert bool(torch.isfinite(out).all())
    assert torch.equal(new_mask, ref_mask)
    torch.testing.assert_close(out.float(), ref_out, rtol=0.01, atol=0.5)


def test_half_precision_layer_matches_float_layer():
    torch.manual_seed(8)
    layer = PartialConv2d(3, 4, 3, padding=1)
    x = torch.rand(1, 3, 12, 12)
    mask = torch.ones(1, 1, 12, 12)
    mask[..., 3:9, 2:10] = 0

    with torch.no_grad():
        expected, expected_mask = layer(x, mask)
        out, new_mask = layer.half()(x.half(), mask.half())

    assert out.dtype == torch.float16
    assert torch.equal(new_mask.float(), expected_mask)
    torch.testing.assert_close(out.float(), expected, rtol=1e-2, atol=1e-2)


def test_premasked_input_with_valid_fraction_equals_the_channel_mask_form():
    rng = np.random.default_rng(9)
    layer = make_layer(4, 3, 3, stride=1, padding=1, bias=True)
    x = torch.from_numpy(rng.normal(size=(2, 4, 10, 10)))
    mask = torch.from_numpy(random_mask(rng, (2, 4, 10, 10)))

    with torch.no_grad():
        out, new_mask = layer.forward_premasked(x * mask, mask.mean(dim=1, keepdim=True))
        expected, expected_mask = layer(x, mask)

    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert torch.equal(new_mask, expected_mask)
