"""``pconv export CKPT --onnx OUT.onnx``: a verified ONNX model for ONNX Runtime anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .app import app
from .common import console, examples, handle_errors

# pconv_cli.export.DEFAULT_OPSET, written out because importing that module loads torch and
# onnx, which `pconv --help` must not wait for (a test keeps the two equal).
DEFAULT_OPSET = 17


@app.command("export", epilog=examples(
    ("pconv export runs/a/best.pt --onnx a.onnx", "any size, checked against torch"),
    ("pconv export runs/a/best.pt --onnx a-512.onnx --static 512 --fp16",
     "a fixed 512×512 fp16 model for runtimes that need static shapes"),
    ("pconv export runs/detector/best.pt --onnx detector.onnx",
     "a damage detector (any size; pconv detect --onnx runs it in tiles)"),
))
@handle_errors
def export_command(
    checkpoint: Annotated[Path, typer.Argument(
        metavar="CKPT", help="pconv checkpoint: an inpainting model or a damage detector.")],
    onnx: Annotated[Path, typer.Option(
        "--onnx", help="Where to write the ONNX model (.onnx).")],
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = DEFAULT_OPSET,
    fp16: Annotated[bool, typer.Option(
        "--fp16", help="fp16 weights and compute (inputs and output stay fp32).")] = False,
    static: Annotated[str | None, typer.Option(
        "--static", metavar="WxH",
        help="Fixed size instead of dynamic sizes: N (square) or WxH, width first (640x256 = "
             "640 wide, 256 high); sides multiples of 2^depth.")] = None,
    tolerance: Annotated[float | None, typer.Option(
        help="Fail above this max abs difference from torch (default 1e-3 fp32, 5e-2 fp16).")
    ] = None,
    device: Annotated[str, typer.Option(
        help="Where ONNX Runtime runs the check: cpu, cuda or auto.")] = "cpu",
) -> None:
    """Export CKPT (an inpainter or a detector) to ONNX; checked against torch at two sizes
    before it is written."""
    from ..export import FP32_GOAL, export_onnx
    from ..masks import parse_size

    result = export_onnx(
        checkpoint, onnx, opset=opset, fp16=fp16,
        static_size=parse_size(static, minimum=1) if static else None, tolerance=tolerance,
        device=device,
    )
    sizes = (f"{result.static_size[1]}x{result.static_size[0]} (WxH)" if result.static_size
             else f"any multiple of {result.multiple}")
    console.print(f"[bold green]wrote[/] {escape(str(result.path))}: {result.precision}, "
                  f"opset {result.opset}, batch dynamic, sizes {sizes}", highlight=False)
    table = Table(title=f"ONNX Runtime ({result.provider}) vs torch fp32", title_justify="left")
    table.add_column("input")
    table.add_column("max abs diff", justify="right")
    table.add_column("finite")
    for check in result.checks:
        table.add_row(check.shape, f"{check.max_abs_diff:.2e}", "yes" if check.finite else "NO")
    console.print(table)
    if result.precision == "fp32":
        met = "met" if result.max_abs_diff <= FP32_GOAL else "not met (trained models do better)"
        console.print(f"goal ≤ {FP32_GOAL:g}: {met}; tolerance {result.tolerance:g}",
                      highlight=False)
    name = escape(str(result.path))
    if result.kind == "detector":
        console.print("use it with:")
        console.print(f"  pconv detect IN OUT --onnx {name}", highlight=False)
        console.print(f"  pconv restore IN OUT --detector {name}", highlight=False)
        return
    console.print("use it with:")
    console.print(f"  pconv restore IN OUT --onnx {name} --masks MASKS", highlight=False)
    console.print(f"  pconv evaluate --onnx {name}   (see pconv evaluate --help)",
                  highlight=False)
