"""PartialConv2d against nn.Conv2d and against a naive partial convolution.

    python benchmarks/bench_layer.py [--threads 2] [--rounds 9] [--warmup 2] [--profile]

One layer as in the paper's encoder: 64 → 128 channels, kernel 5, stride 2, batch 4 at 256²,
a one-channel mask with about a quarter holes. The naive layer gets the 64-channel mask that
its ports carry. "forward" runs under torch.inference_mode (restoring); "forward+backward"
back-propagates a fixed output gradient to the weights and the input (training). Last, the
input masking X ⊙ M is timed alone, into a fresh and into a preallocated tensor.
Goals: forward ≤ 1.20×, forward+backward ≤ 1.10× nn.Conv2d.
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
from naive_pconv import NaivePartialConv2d, hole_mask
from torch import nn

from pconv_cli.core import PartialConv2d

FORWARD_GOAL = 1.20
TRAINING_GOAL = 1.10


def build(batch: int = 4, size: int = 256):
    torch.manual_seed(0)
    pconv = PartialConv2d(64, 128, 5, stride=2, padding=2)
    conv = nn.Conv2d(64, 128, 5, stride=2, padding=2)
    conv.load_state_dict(pconv.state_dict())
    naive = NaivePartialConv2d.from_partial(pconv)
    x = torch.randn(batch, 64, size, size)
    mask = hole_mask(batch, size, size)
    wide_mask = mask.expand(-1, 64, -1, -1).contiguous()
    return pconv, conv, naive, x, mask, wide_mask


def check_naive_agrees(pconv, _conv, naive, x, mask, wide_mask) -> None:
    with torch.inference_mode():
        ours, our_mask = pconv(x, mask)
        theirs, their_mask = naive(x, wide_mask)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    assert torch.equal(our_mask.expand_as(their_mask), their_mask)


def forward_cases(pconv, conv, naive, x, mask, wide_mask):
    def run(fn):
        def case():
            with torch.inference_mode():
                fn()
        return case

    return {
        "nn.Conv2d": run(lambda: conv(x)),
        "PartialConv2d": run(lambda: pconv(x, mask)),
        "naive partial conv": run(lambda: naive(x, wide_mask)),
    }


def training_cases(pconv, conv, naive, x, mask, wide_mask):
    x = x.clone().requires_grad_(True)
    grad = torch.randn(x.shape[0], 128, x.shape[2] // 2, x.shape[3] // 2)

    def run(layer, fn):
        def case():
            layer.zero_grad(set_to_none=True)
            x.grad = None
            fn().backward(grad)
        return case

    return {
        "nn.Conv2d": run(conv, lambda: conv(x)),
        "PartialConv2d": run(pconv, lambda: pconv(x, mask)[0]),
        "naive partial conv": run(naive, lambda: naive(x, wide_mask)[0]),
    }


def masking_cases(x, mask):
    """X ⊙ M alone, the one full-size step the forward adds: into a fresh tensor (as the
    layer does) and into a preallocated one (the arithmetic without the new pages)."""
    out = torch.empty_like(x)

    def fresh():
        with torch.inference_mode():
            x * mask

    def preallocated():
        with torch.inference_mode():
            torch.mul(x, mask, out=out)

    return {"X ⊙ M, fresh result": fresh, "X ⊙ M, preallocated": preallocated}


def main() -> None:
    options = parse_options(__doc__.splitlines()[0])
    layers = build()
    check_naive_agrees(*layers)
    print(f"PartialConv2d 64→128, kernel 5, stride 2, batch 4, 256² ({describe_machine(options)})")

    for title, cases, goal in (
        ("forward (inference_mode)", forward_cases(*layers), FORWARD_GOAL),
        ("forward+backward", training_cases(*layers), TRAINING_GOAL),
    ):
        timings = interleaved(cases, options.rounds, options.warmup)
        print_times(title, timings)
        ours = ratio(timings, "PartialConv2d", "nn.Conv2d")
        print_ratio("PartialConv2d / nn.Conv2d", ours, f"≤ {goal:.2f}×", ours.median <= goal)
        print_ratio("naive / nn.Conv2d", ratio(timings, "naive partial conv", "nn.Conv2d"))
        print_ratio("naive / PartialConv2d", ratio(timings, "naive partial conv", "PartialConv2d"))
        if options.profile:
            print_profiles(title, cases)

    _pconv, _conv, _naive, x, mask, _wide_mask = layers
    timings = interleaved(masking_cases(x, mask), options.rounds, options.warmup)
    print_times("input masking alone (inference_mode)", timings)
    print_ratio("fresh / preallocated",
                ratio(timings, "X ⊙ M, fresh result", "X ⊙ M, preallocated"))


if __name__ == "__main__":
    main()
