"""The inpainting loss (Liu et al. 2018, §3.3).

    L_total = 1·L_valid + 6·L_hole + 0.05·L_perc + 120·(L_style_out + L_style_comp) + 0.1·L_tv

Every term is a mean absolute difference, normalised by the element counts the paper uses.
M is 1 = valid, 0 = hole.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from ..loss_weights import LossWeights
from .network import composite
from .vgg import VGG16Features, load_vgg16


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """K_p Ψᵀ Ψ with K_p = 1/(C·H·W), computed in fp32 (an fp16 Gram overflows)."""
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    # Autocast would run bmm in fp16/bf16 again, whatever the dtype of its inputs.
    with torch.autocast(device_type=features.device.type, enabled=False):
        return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def hole_border_region(mask: torch.Tensor) -> torch.Tensor:
    """P: the hole region dilated by one pixel (3×3), 1 inside P."""
    hole = 1.0 - mask[:, :1].float()
    return F.max_pool2d(hole, kernel_size=3, stride=1, padding=1)


def total_variation(comp: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Σ |differences of horizontally and vertically adjacent pixels both in P| / N_Icomp."""
    comp = comp.float()
    both_h = region[..., :, 1:] * region[..., :, :-1]
    both_v = region[..., 1:, :] * region[..., :-1, :]
    dh = (comp[..., :, 1:] - comp[..., :, :-1]).abs() * both_h
    dv = (comp[..., 1:, :] - comp[..., :-1, :]).abs() * both_v
    return (dh.sum() + dv.sum()) / comp.numel()


class InpaintingLoss(nn.Module):
    """``forward(output, target, mask) -> dict`` of every term and ``"total"``.

    ``output`` is I_out, ``target`` I_gt (N×3×H×W in [0, 1]), ``mask`` N×1×H×W (1 = valid).
    With perceptual and style weights 0 no VGG is built (pixel-only training). Otherwise the
    ImageNet VGG-16 comes from ``vgg_weights`` or :func:`load_vgg16`'s search order, or a
    ``feature_extractor`` returning the pool1–pool3 activations can be passed in.
    """

    def __init__(
        self,
        weights: LossWeights | None = None,
        *,
        vgg_weights: str | os.PathLike | None = None,
        feature_extractor: nn.Module | None = None,
        allow_download: bool = True,
    ) -> None:
        super().__init__()
        self.weights = weights or LossWeights()
        if feature_extractor is None and self.weights.needs_vgg:
            feature_extractor = VGG16Features(
                load_vgg16(vgg_weights, allow_download=allow_download)
            )
        self.features = feature_extractor if self.weights.needs_vgg else None

    def forward(
        self, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        w = self.weights
        mask = mask.to(output.dtype)
        output_f, target_f, mask_f = output.float(), target.float(), mask.float()
        comp = composite(target_f, output_f, mask_f)
        diff = (output_f - target_f).abs()
        # N_Igt counts every element of I_gt, channels included: a masked *mean*.
        terms = {
            "valid": (mask_f * diff).mean(),
            "hole": ((1 - mask_f) * diff).mean(),
            "tv": total_variation(comp, hole_border_region(mask_f)),
        }
        zero = output_f.new_zeros(())
        if self.features is not None:
            feats_out = self.features(output)
            feats_comp = self.features(comp.to(output.dtype))
            with torch.no_grad():
                feats_gt = self.features(target.to(output.dtype))
            perc = zero
            style_out = zero
            style_comp = zero
            for f_out, f_comp, f_gt in zip(feats_out, feats_comp, feats_gt, strict=True):
                f_gt = f_gt.float()
                perc = perc + (f_out.float() - f_gt).abs().mean()
                perc = perc + (f_comp.float() - f_gt).abs().mean()
                g_gt = gram_matrix(f_gt)
                # mean over the C×C entries is the paper's 1/C² · ‖·‖₁
                style_out = style_out + (gram_matrix(f_out) - g_gt).abs().mean()
                style_comp = style_comp + (gram_matrix(f_comp) - g_gt).abs().mean()
            terms.update(perceptual=perc, style_out=style_out, style_comp=style_comp)
        else:
            terms.update(perceptual=zero, style_out=zero, style_comp=zero)
        terms["total"] = (
            w.valid * terms["valid"]
            + w.hole * terms["hole"]
            + w.perceptual * terms["perceptual"]
            + w.style * (terms["style_out"] + terms["style_comp"])
            + w.tv * terms["tv"]
        )
        return terms
