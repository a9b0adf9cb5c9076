"""Synthetic damage with exact masks: for training a damage detector and thin-hole inpainting.

``synthesise(image, rng, params)`` lays random damage onto a clean float RGB image and returns
the damaged image with a bool mask of exactly the pixels the damage changed (True = damaged;
``Damaged.valid`` is the library's True = valid mask). ``thin_hole_mask(shape, rng, params)``
draws only thin holes (hairs, specks, scratches, cracks) and returns their mask.

Damage kinds: real film artefacts from a folder of RGBA cut-outs (``artefacts``); thin
scratches, curved scratches, hairs, dust and cracks (``procedural``); creases, tears, missing
corners and edges and wormholes (``losses``); ink blots, foxing, mould and tape (``stains``).
Shapes are drawn in ``geometry``, laid on with their exact mask in ``layers``; image kinds and
degradations, which are not holes, are in ``degrade``; ``compose`` holds the parameters.
See docs/damage.md.
"""

from ..seeds import damage_seed
from .compose import (
    DAMAGE_WEIGHTS,
    DEGRADATION_CHANCES,
    GENERATOR_VERSION,
    IMAGE_KIND_WEIGHTS,
    THIN_WEIGHTS,
    Damaged,
    DamageParams,
    ThinHoleParams,
    synthesise,
    thin_hole_mask,
)

__all__ = [
    "DAMAGE_WEIGHTS",
    "DEGRADATION_CHANCES",
    "GENERATOR_VERSION",
    "IMAGE_KIND_WEIGHTS",
    "THIN_WEIGHTS",
    "DamageParams",
    "Damaged",
    "ThinHoleParams",
    "damage_seed",
    "synthesise",
    "thin_hole_mask",
]
