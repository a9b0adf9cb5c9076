"""Training steps per second: pconv's partial convolution vs the naive baseline.

One step = forward, the paper's pixel losses (valid, hole, TV), backward and an Adam update,
at batch 4 and 256², for the paper's 256² network (depth 7, width 64) and a half-width one
(width 32), each with and without channels_last. The naive twin has the same weights and
shapes; only its mask arithmetic differs (see naive_pconv.py). Goal: ≥ 1.5× the naive
baseline's steps/s.

``--only amp`` times the half-width net's step in fp32 against ``pconv train --amp bf16``
(bfloat16 autocast; the mask arithmetic and the loss stay fp32).

    python benchmarks/bench_train.py [--threads 2] [--rounds 3] [--warmup 1] [--only layout,amp]
"""

from __future__ import annotations

import argparse
import copy

import torch
from common import describe_machine, interleaved, parse_options, print_ratio, print_times, ratio
from naive_pconv import hole_mask, naive_twin

from pconv_cli.core import InpaintingLoss, LossWeights, PConvUNet, UNetConfig

BATCH, SIZE = 4, 256


def step_function(model: torch.nn.Module, channels_last: bool, bf16: bool = False):
    model = copy.deepcopy(model).train()
    image = torch.rand(BATCH, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    mask = hole_mask(BATCH, SIZE, SIZE)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        image = image.contiguous(memory_format=torch.channels_last)
        mask = mask.contiguous(memory_format=torch.channels_last)
    criterion = InpaintingLoss(LossWeights(perceptual=0, style=0))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            output = model(image, mask)
        terms = criterion(output.float(), image, mask)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()

    return step


def main() -> None:
    only = argparse.ArgumentParser(add_help=False)
    only.add_argument("--only", default="layout,amp")
    parts = set(only.parse_known_args()[0].only.split(","))
    options = parse_options(__doc__.splitlines()[0], rounds=3, warmup=1)
    print(f"{__doc__.splitlines()[0]}\n{describe_machine(options)}; batch {BATCH}, {SIZE}²")
    if "layout" in parts:
        compare_layouts(options)
    if "amp" in parts:
        compare_bf16(options)


def compare_bf16(options) -> None:
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(depth=7, width=32))
    cases = {"fp32": step_function(model, False), "bf16": step_function(model, False, True)}
    seconds = interleaved(cases, options.rounds, options.warmup)
    print_times("half-width net, contiguous: seconds per training step", seconds)
    print_ratio("bf16 autocast speed-up", ratio(seconds, "fp32", "bf16"))


def compare_layouts(options) -> None:
    for label, width in (("paper net (depth 7, width 64)", 64), ("half-width net", 32)):
        torch.manual_seed(0)
        model = PConvUNet(UNetConfig(depth=7, width=width))
        naive = naive_twin(model)
        cases = {
            "pconv": step_function(model, False),
            "naive": step_function(naive, False),
            "pconv channels_last": step_function(model, True),
            "naive channels_last": step_function(naive, True),
        }
        seconds = interleaved(cases, options.rounds, options.warmup)
        print_times(f"{label}: seconds per training step", seconds)
        for layout in ("", " channels_last"):
            # speed-up = naive time / pconv time
            r = ratio(seconds, f"naive{layout}", f"pconv{layout}")
            print_ratio(f"speed-up vs naive{layout or ' (contiguous)'}", r, "≥ 1.5×",
                        r.median >= 1.5)
        r = ratio(seconds, "pconv", "pconv channels_last")
        print_ratio("channels_last speed-up for pconv", r)


if __name__ == "__main__":
    main()
