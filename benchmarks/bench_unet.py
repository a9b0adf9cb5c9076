"""The paper's U-Net, inference: partial convolutions against a plain and a naive twin.

    python benchmarks/bench_unet.py [--threads 2] [--rounds 7] [--warmup 1] [--profile]

Batch 1, eval mode, torch.inference_mode, a mask with about a quarter holes; depth 7 at 256²
and depth 8 at 512², as in the paper. The twins share the network's weights (see
naive_pconv.py): "plain" has ordinary convolutions and no mask work, "naive" computes
the window sums with a C_in → C_out ones-kernel convolution on C_in-channel masks.
Goals: ≤ 1.10× the plain twin, ≥ 2× faster than the naive one.
"""

from __future__ import annotations

import torch
from common import (
    describe_machine,
    interleaved,
    parse_options,
    print_profiles,
    print_ratio,
    print_times,
    ratio,
)
from naive_pconv import PlainTwin, hole_mask, naive_twin

from pconv_cli.core import PConvUNet, UNetConfig

PLAIN_GOAL = 1.10
NAIVE_GOAL = 2.0
DEPTH_FOR_SIZE = {256: 7, 512: 8}


def build(size: int):
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(depth=DEPTH_FOR_SIZE[size])).eval()
    image = torch.rand(1, 3, size, size)
    mask = hole_mask(1, size, size)
    return model, PlainTwin(model).eval(), naive_twin(model).eval(), image, mask


def check_naive_agrees(model, naive, image, mask) -> None:
    with torch.inference_mode():
        ours, theirs = model(image, mask), naive(image, mask)
    scale = ours.abs().max().item()
    torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-4 * scale)


def inference(net, image, mask):
    def case():
        with torch.inference_mode():
            net(image, mask)
    return case


def main() -> None:
    options = parse_options(__doc__.splitlines()[0], rounds=7, warmup=1)
    print(f"paper U-Net inference, batch 1 ({describe_machine(options)})")
    for size in (256, 512):
        model, plain, naive, image, mask = build(size)
        check_naive_agrees(model, naive, image, mask)

        cases = {"PConvUNet": inference(model, image, mask),
                 "plain twin": inference(plain, image, mask),
                 "naive twin": inference(naive, image, mask)}
        timings = interleaved(cases, options.rounds, options.warmup)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print_times(f"{size}², depth {model.config.depth} ({params:.1f} M parameters)", timings)
        over_plain = ratio(timings, "PConvUNet", "plain twin")
        print_ratio("PConvUNet / plain twin", over_plain, f"≤ {PLAIN_GOAL:.2f}×",
                    over_plain.median <= PLAIN_GOAL)
        naive_over = ratio(timings, "naive twin", "PConvUNet")
        print_ratio("naive twin / PConvUNet", naive_over, f"≥ {NAIVE_GOAL:.1f}×",
                    naive_over.median >= NAIVE_GOAL)
        if options.profile:
            print_profiles(f"{size}²", cases)


if __name__ == "__main__":
    main()
