"""The partial-convolution U-Net (Liu et al. 2018, §3.2) and its helpers."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from pconv_cli.core import (
    PartialConv2d,
    PConvUNet,
    UNetConfig,
    composite,
    crop_to,
    freeze_encoder_bn,
    nearest_valid_size,
    pad_to_multiple,
)
from pconv_cli.errors import ConfigError

TINY = UNetConfig(depth=3, width=8)


def tiny_net(seed: int = 0, config: UNetConfig = TINY) -> PConvUNet:
    torch.manual_seed(seed)
    return PConvUNet(config)


def holes_mask(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """N×1×H×W, 1 = valid: random rectangles, one of them touching the border."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(n, 1, h, w)
    for b in range(n):
        for _ in range(3):
            top = int(torch.randint(0, h - h // 4, (1,), generator=g))
            left = int(torch.randint(0, w - w // 4, (1,), generator=g))
            mask[b, :, top : top + h // 4, left : left + w // 3] = 0
        mask[b, :, : h // 8, : w // 2] = 0
    return mask


def encoder_output_shapes(model: PConvUNet, image: torch.Tensor, mask: torch.Tensor):
    shapes = []
    hooks = [
        block.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out[0].shape)))
        for block in model.encoder
    ]
    with torch.no_grad():
        output = model(image, mask)
    for hook in hooks:
        hook.remove()
    return shapes, output


def test_paper_network_layers_follow_the_paper():
    model = PConvUNet()  # depth 8 at 512², the paper's network

    encoder = [(b.conv.in_channels, b.conv.out_channels, b.conv.kernel_size[0],
                b.conv.stride[0], b.bn is not None) for b in model.encoder]
    decoder = [(b.conv.in_channels, b.conv.out_channels, b.conv.kernel_size[0],
                b.conv.stride[0], b.bn is not None) for b in model.decoder]

    assert encoder == [
        (3, 64, 7, 2, False), (64, 128, 5, 2, True), (128, 256, 5, 2, True),
        (256, 512, 3, 2, True), (512, 512, 3, 2, True), (512, 512, 3, 2, True),
        (512, 512, 3, 2, True), (512, 512, 3, 2, True),
    ]
    assert decoder == [
        (1024, 512, 3, 1, True), (1024, 512, 3, 1, True), (1024, 512, 3, 1, True),
        (1024, 512, 3, 1, True), (512 + 256, 256, 3, 1, True), (256 + 128, 128, 3, 1, True),
        (128 + 64, 64, 3, 1, True), (64 + 3, 3, 3, 1, False),
    ]


def test_paper_network_parameter_count():
    layers = [(3, 64, 7), (64, 128, 5), (128, 256, 5), (256, 512, 3)] + [(512, 512, 3)] * 4
    layers += [(1024, 512, 3)] * 4 + [(768, 256, 3), (384, 128, 3), (192, 64, 3), (67, 3, 3)]
    conv_params = sum(cin * cout * k * k + cout for cin, cout, k in layers)
    bn_channels = [128, 256] + [512] * 5 + [512] * 4 + [256, 128, 64]  # encoder 2..8, decoder

    model = PConvUNet()

    assert sum(p.numel() for p in model.parameters()) == conv_params + 2 * sum(bn_channels)
    assert 32.8e6 < conv_params < 33.0e6


def test_decoder_block_upsamples_nearest_then_convolves_batch_norms_and_leaky_relus():
    model = tiny_net().eval()
    block = model.decoder[-2]
    x = torch.randn(1, block.up_channels, 4, 4)
    skip = torch.randn(1, block.skip_channels, 8, 8)

    with torch.no_grad():
        out, _ = block(x, torch.ones(1, 1, 4, 4), skip, torch.ones(1, 1, 8, 8))
        upsampled = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        raw, _ = block.conv(torch.cat([upsampled, skip], 1), torch.ones(1, 1, 8, 8))
        expected = nn.functional.leaky_relu(block.bn(raw), 0.2)

    torch.testing.assert_close(out, expected)


def test_decoder_block_equals_partial_conv_on_concatenated_features_and_masks():
    model = tiny_net(config=dataclasses.replace(TINY, decoder_renorm="paper")).eval()
    block = model.decoder[1]
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, block.up_channels, 8, 8, generator=g)
    skip = torch.randn(2, block.skip_channels, 16, 16, generator=g)
    mask = (torch.rand(2, 1, 8, 8, generator=g) > 0.5).float()
    skip_mask = (torch.rand(2, 1, 16, 16, generator=g) > 0.5).float()

    x, skip = x * mask, skip * skip_mask  # the blocks pass features that are 0 in holes

    with torch.no_grad():
        out, new_mask = block(x, mask, skip, skip_mask)
        up = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
        up_mask = nn.functional.interpolate(mask, scale_factor=2.0, mode="nearest")
        # The paper's formulation: one mask channel per feature channel of both branches.
        cat_mask = torch.cat([up_mask.expand(-1, block.up_channels, -1, -1),
                              skip_mask.expand(-1, block.skip_channels, -1, -1)], dim=1)
        raw, expected_mask = block.conv(torch.cat([up, skip], dim=1), cat_mask)
        expected = nn.functional.leaky_relu(block.bn(raw), 0.2) * expected_mask

    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(new_mask, expected_mask)


def test_last_decoder_layer_has_no_batch_norm_and_no_activation():
    model = tiny_net().eval()

    with torch.no_grad():
        output = model(torch.rand(1, 3, 32, 32), torch.ones(1, 1, 32, 32))

    assert model.decoder[-1].bn is None
    assert model.decoder[-1].conv.out_channels == 3
    assert bool((output < 0).any()) and bool((output > 1).any())  # nothing squashes it


@pytest.mark.parametrize(("depth", "size"), [(7, 256), (8, 512)])
def test_paper_depths_keep_input_size_and_halve_per_encoder_layer(depth, size):
    config = UNetConfig(depth=depth, width=2)  # paper shapes, tiny channel counts
    model = tiny_net(config=config).eval()
    image = torch.rand(1, 3, size, size)

    shapes, output = encoder_output_shapes(model, image, holes_mask(1, size, size))

    assert output.shape == (1, 3, size, size)
    channels = config.encoder_channels()
    assert shapes == [(1, channels[i], size >> (i + 1), size >> (i + 1)) for i in range(depth)]
    assert shapes[-1][-2:] == (2, 2)


def test_non_square_input_keeps_its_size():
    model = tiny_net().eval()
    image = torch.rand(2, 3, 40, 96)

    with torch.no_grad():
        output = model(image, holes_mask(2, 40, 96))

    assert output.shape == (2, 3, 40, 96)
    assert bool(torch.isfinite(output).all())


@pytest.mark.parametrize(("height", "width"), [(60, 64), (64, 66), (4, 8), (8, 4)])
def test_size_not_a_multiple_of_two_to_the_depth_is_a_config_error(height, width):
    model = tiny_net()

    with pytest.raises(ConfigError, match=r"not a multiple of 8 .*nearest valid size"):
        model(torch.rand(1, 3, height, width), torch.ones(1, 1, height, width))


def test_size_error_names_the_nearest_valid_size():
    with pytest.raises(ConfigError, match="nearest valid size 56×72"):
        tiny_net().check_size(58, 70)


@pytest.mark.parametrize(("value", "expected"), [(58, 56), (60, 64), (3, 8), (64, 64), (100, 104)])
def test_nearest_valid_size_rounds_to_the_closest_multiple(value, expected):
    assert nearest_valid_size(value, 8) == expected


def test_mask_with_wrong_channel_count_is_a_config_error():
    with pytest.raises(ConfigError, match="mask must have 1 or 3 channels"):
        tiny_net()(torch.rand(1, 3, 16, 16), torch.ones(1, 2, 16, 16))


def test_three_channel_mask_counts_a_pixel_valid_only_if_every_channel_is():
    model = tiny_net().eval()
    image = torch.rand(1, 3, 32, 32)
    mask3 = torch.ones(1, 3, 32, 32)
    mask3[:, 0, 4:12, 4:20] = 0
    mask3[:, 2, 16:30, 10:14] = 0

    with torch.no_grad():
        out3 = model(image, mask3)
        out1 = model(image, mask3.amin(dim=1, keepdim=True))

    torch.testing.assert_close(out3, out1, rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_hole_pixel_values_do_not_change_network_output(mode):
    model = tiny_net().train(mode == "train")
    image = torch.rand(2, 3, 64, 64)
    mask = holes_mask(2, 64, 64)
    noise = torch.rand(2, 3, 64, 64) * 100 - 50
    changed = torch.where(mask.bool(), image, noise)
    assert not torch.equal(image, changed)

    with torch.no_grad():
        out = model(image, mask)
        out_changed = model(changed, mask)

    assert torch.equal(out, out_changed)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_features_between_blocks_are_zero_in_their_holes(mode):
    model = tiny_net().train(mode == "train")
    outputs = []
    for block in list(model.encoder) + list(model.decoder)[:-1]:
        block.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    mask = holes_mask(2, 64, 64)
    mask[:, :, 8:40, 8:40] = 0  # holes that survive a few layers

    with torch.no_grad():
        model(torch.rand(2, 3, 64, 64), mask)

    assert any(bool((m == 0).any()) for _, m in outputs)
    for features, feature_mask in outputs:
        assert bool((features * (1 - feature_mask) == 0).all())


def test_network_output_depends_on_valid_pixels():
    model = tiny_net().eval()
    image = torch.rand(1, 3, 32, 32)
    mask = holes_mask(1, 32, 32)

    with torch.no_grad():
        out = model(image, mask)
        out_changed = model(torch.where(mask.bool(), 1 - image, image), mask)

    assert not torch.allclose(out, out_changed)


def test_network_keeps_no_state_between_calls():
    model = tiny_net().eval()
    first = (torch.rand(1, 3, 32, 32), holes_mask(1, 32, 32, seed=1))
    second = (torch.rand(2, 3, 16, 48), holes_mask(2, 16, 48, seed=2))

    with torch.no_grad():
        before = model(*first)
        model(*second)
        after = model(*first)

    assert torch.equal(before, after)


def test_bf16_autocast_on_cpu_gives_finite_output():
    model = tiny_net().eval()
    image = torch.rand(2, 3, 64, 64)
    mask = holes_mask(2, 64, 64)
    mask[1, :, 8:56, 8:56] = 0  # a hole wider than the bottleneck windows

    with torch.no_grad():
        expected = model(image, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output = model(image, mask)

    assert bool(torch.isfinite(output).all())
    # bf16 keeps ~3 significant digits: compare in norm, not element by element.
    assert ((output.float() - expected).norm() / expected.norm()).item() < 0.03


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_autocast_on_cuda_gives_finite_output():
    model = tiny_net().cuda().eval()
    image = torch.rand(2, 3, 64, 64, device="cuda")
    mask = holes_mask(2, 64, 64).cuda()
    mask[1, :, 8:56, 8:56] = 0

    with torch.no_grad():
        expected = model(image, mask)
        with torch.autocast("cuda", dtype=torch.float16):
            output = model(image, mask)

    assert bool(torch.isfinite(output).all())
    assert ((output.float() - expected).norm() / expected.norm()).item() < 0.01


def test_fully_masked_image_gives_finite_output():
    model = tiny_net().eval()

    with torch.no_grad():
        output = model(torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))

    assert bool(torch.isfinite(output).all())


def test_weights_are_kaiming_initialised_with_zero_bias():
    model = PConvUNet(UNetConfig(depth=4, width=32))
    conv = model.encoder[2].conv  # 64 → 128, kernel 5: fan_in 1600

    assert conv.bias is not None and bool((conv.bias == 0).all())
    assert conv.weight.std().item() == pytest.approx((2 / (64 * 25)) ** 0.5, rel=0.05)


def test_encoder_bn_frozen_keeps_statistics_and_parameters_while_decoder_bn_trains():
    model = tiny_net()
    freeze_encoder_bn(model)
    model.train()
    encoder_bn = [b.bn for b in model.encoder if b.bn is not None]
    decoder_bn = [b.bn for b in model.decoder if b.bn is not None]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)

    image = torch.rand(2, 3, 32, 32)
    mask = holes_mask(2, 32, 32)
    loss = (model(image, mask) - image).abs().mean()
    loss.backward()
    optimizer.step()

    after = model.state_dict()
    assert all(not bn.training for bn in encoder_bn)
    assert all(bn.training for bn in decoder_bn)
    for name, value in after.items():
        if name.startswith("encoder.") and ".bn." in name:
            assert torch.equal(value, before[name]), name
    for stat in ("running_mean", "running_var", "weight", "bias"):
        assert all(not torch.equal(getattr(bn, stat), before[f"decoder.{i}.bn.{stat}"])
                   for i, bn in enumerate(decoder_bn)), stat
    assert not torch.equal(after["encoder.1.conv.weight"], before["encoder.1.conv.weight"])


def test_frozen_encoder_bn_stays_frozen_when_optimizer_holds_all_parameters():
    model = tiny_net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)  # made before freezing
    image, mask = torch.rand(2, 3, 32, 32), holes_mask(2, 32, 32)
    (model(image, mask) - image).abs().mean().backward()
    optimizer.step()
    optimizer.zero_grad()

    freeze_encoder_bn(model)
    model.train()
    bn = model.encoder[1].bn
    before = [t.clone() for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var)]
    (model(image, mask) - image).abs().mean().backward()
    optimizer.step()

    after = (bn.weight, bn.bias, bn.running_mean, bn.running_var)
    assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))


def test_unfrozen_encoder_bn_trains():
    model = tiny_net().train()
    bn = model.encoder[1].bn
    before = bn.running_mean.clone()

    with torch.no_grad():
        model(torch.rand(2, 3, 32, 32), holes_mask(2, 32, 32))

    assert not torch.equal(bn.running_mean, before)


def test_composite_keeps_known_pixels_and_fills_holes_from_output():
    image = torch.rand(1, 3, 8, 8)
    output = torch.rand(1, 3, 8, 8)
    mask = torch.ones(1, 1, 8, 8)
    mask[..., 2:5, 1:7] = 0

    result = composite(image, output, mask)

    valid = mask.bool().expand_as(image)
    assert torch.equal(result[valid], image[valid])
    assert torch.equal(result[~valid], output[~valid])


def test_pad_to_multiple_pads_bottom_right_as_hole_and_crop_restores_size():
    image = torch.rand(1, 3, 50, 70)
    mask = torch.ones(1, 1, 50, 70)

    padded, padded_mask, size = pad_to_multiple(image, mask, 8)

    assert padded.shape[-2:] == (56, 72) and padded_mask.shape[-2:] == (56, 72)
    assert size == (50, 70)
    assert torch.equal(padded[..., :50, :70], image)
    assert bool((padded_mask[..., 50:, :] == 0).all() and (padded_mask[..., :, 70:] == 0).all())
    assert torch.equal(crop_to(padded, size), image)


def test_padded_network_output_does_not_depend_on_padding_content():
    model = tiny_net().eval()
    image = torch.rand(1, 3, 50, 70)
    mask = holes_mask(1, 50, 70)
    padded, padded_mask, size = pad_to_multiple(image, mask, model.config.multiple)
    noisy = padded.clone()
    noisy[..., 50:, :] = 7.0
    noisy[..., :, 70:] = -3.0

    with torch.no_grad():
        out = crop_to(model(padded, padded_mask), size)
        out_noisy = crop_to(model(noisy, padded_mask), size)

    assert out.shape[-2:] == (50, 70)
    assert torch.equal(out, out_noisy)


def test_pad_to_multiple_leaves_valid_sizes_untouched():
    image, mask = torch.rand(1, 3, 16, 24), torch.ones(1, 1, 16, 24)

    padded, padded_mask, size = pad_to_multiple(image, mask, 8)

    assert padded is image and padded_mask is mask and size == (16, 24)


@pytest.mark.parametrize(
    "kwargs",
    [{"depth": 0}, {"depth": 13}, {"width": 0}, {"kernel_sizes": (3, 3)},
     {"depth": 2, "kernel_sizes": (3, 4)}, {"image_channels": 0}],
)
def test_invalid_config_is_a_config_error(kwargs):
    with pytest.raises(ConfigError):
        UNetConfig(**kwargs)


def test_config_defaults_are_the_papers():
    config = UNetConfig()

    assert config.depth == 8 and config.multiple == 256
    assert config.kernel_sizes == (7, 5, 5, 3, 3, 3, 3, 3)
    assert config.encoder_channels() == [64, 128, 256, 512, 512, 512, 512, 512]


def test_config_round_trips_through_dict():
    config = UNetConfig(depth=5, width=16, max_width_factor=4, kernel_sizes=(5, 5, 3, 3, 3))

    assert UNetConfig.from_dict(config.to_dict()) == config


def test_config_from_dict_with_unknown_key_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown model settings"):
        UNetConfig.from_dict({**TINY.to_dict(), "attention": True})


def test_every_convolution_is_partial():
    model = tiny_net()

    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]

    assert convs and all(isinstance(m, PartialConv2d) for m in convs)


def _branch_reference(block, up, up_mask, skip, skip_mask):
    """Brute force, one output element at a time: each branch's window sum over its valid
    elements scaled by (its elements / its valid elements), the total by C / (channels of
    the branches the window sees), bias where the window sees anything."""
    w = block.conv.weight
    n_up = block.up_channels
    pad = lambda t: nn.functional.pad(t, (1, 1, 1, 1))  # noqa: E731
    up, up_mask, skip, skip_mask = pad(up), pad(up_mask), pad(skip), pad(skip_mask)
    n, _, h, wd = up.shape
    out = torch.zeros(n, w.shape[0], h - 2, wd - 2, dtype=torch.float64)
    seen = torch.zeros(n, 1, h - 2, wd - 2, dtype=torch.float64)
    for b in range(n):
        for y in range(h - 2):
            for x in range(wd - 2):
                total, channels = 0.0, 0
                for feats, masks, weight in ((up, up_mask, w[:, :n_up]),
                                             (skip, skip_mask, w[:, n_up:])):
                    m = masks[b, 0, y:y + 3, x:x + 3].double()
                    if m.sum() == 0:
                        continue
                    window = feats[b, :, y:y + 3, x:x + 3].double() * m
                    total = total + (weight.double() * window).sum(dim=(1, 2, 3)) * (9 / m.sum())
                    channels += weight.shape[1]
                if channels:
                    c = w.shape[1]
                    out[b, :, y, x] = total * (c / channels) + block.conv.bias.double()
                    seen[b, 0, y, x] = 1
    return out, seen


def test_branch_renorm_matches_a_brute_force_reference():
    model = tiny_net().eval()
    block = model.decoder[-1]  # the last layer: up features and the image
    g = torch.Generator().manual_seed(4)
    up = torch.randn(2, block.up_channels, 6, 6, generator=g)
    skip = torch.rand(2, block.skip_channels, 12, 12, generator=g)
    mask = (torch.rand(2, 1, 6, 6, generator=g) > 0.3).float()
    skip_mask = (torch.rand(2, 1, 12, 12, generator=g) > 0.4).float()
    up, skip = up * mask, skip * skip_mask
    with torch.no_grad():
        out, new_mask = block(up, mask, skip, skip_mask)
        up2 = nn.functional.interpolate(up, scale_factor=2.0, mode="nearest")
        mask2 = nn.functional.interpolate(mask, scale_factor=2.0, mode="nearest")
        expected, seen = _branch_reference(block, up2, mask2, skip, skip_mask)
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(new_mask.double(), seen)


@pytest.mark.parametrize("case", ["all valid", "skip missing", "up partly missing"])
def test_branch_renorm_is_the_papers_where_a_branch_is_whole_or_gone(case):
    g = torch.Generator().manual_seed(5)
    branch = tiny_net(seed=1).eval().decoder[1]
    paper = tiny_net(seed=1, config=dataclasses.replace(TINY, decoder_renorm="paper")).eval()
    paper = paper.decoder[1]
    up = torch.randn(1, branch.up_channels, 8, 8, generator=g)
    skip = torch.randn(1, branch.skip_channels, 16, 16, generator=g)
    mask, skip_mask = torch.ones(1, 1, 8, 8), torch.ones(1, 1, 16, 16)
    if case == "skip missing":
        skip_mask = torch.zeros_like(skip_mask)
    if case == "up partly missing":
        mask = (torch.rand(1, 1, 8, 8, generator=g) > 0.5).float()
        skip_mask = torch.zeros_like(skip_mask)
    up, skip = up * mask, skip * skip_mask
    with torch.no_grad():
        a, a_mask = branch(up, mask, skip, skip_mask)
        b, b_mask = paper(up, mask, skip, skip_mask)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert torch.equal(a_mask, b_mask)


@pytest.mark.parametrize(("renorm", "flat"), [("branch", True), ("paper", False)])
def test_a_one_pixel_hole_in_a_flat_image_keeps_the_image_level(renorm, flat):
    """The cause of dark thin fills: a last layer that copies the image (a 3×3 mean of the
    skip, nothing from the up branch) fills a 1 px hole on flat grey with the grey itself
    only when the image branch is renormalised on its own."""
    config = dataclasses.replace(TINY, decoder_renorm=renorm)
    block = tiny_net(config=config).eval().decoder[-1]
    with torch.no_grad():
        block.conv.weight.zero_()
        block.conv.bias.zero_()
        for c in range(3):
            block.conv.weight[c, block.up_channels + c] = 1 / 9
    up = torch.rand(1, block.up_channels, 8, 8)
    grey = torch.full((1, 3, 16, 16), 0.8)
    skip_mask = torch.ones(1, 1, 16, 16)
    skip_mask[..., 7, 9] = 0
    with torch.no_grad():
        out, _ = block(up, torch.ones(1, 1, 8, 8), grey * skip_mask, skip_mask)
    assert torch.isclose(out[0, :, 7, 9], torch.full((3,), 0.8), atol=1e-6).all() == flat
