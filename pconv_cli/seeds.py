"""Seeds of the items of a seeded set: every generated mask and every synthesised damage gets
its own, derived from the set's seed and the item's place in the set, so that any item can be
made again on its own and workers need not share a generator."""

from __future__ import annotations

import numpy as np


def derive_seed(seed: int, *key: int) -> int:
    """The seed of one item, from the set seed and the item's place in the set (any number of
    integers): ``np.random.default_rng(derive_seed(seed, index))``."""
    state = np.random.SeedSequence([seed, *key]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])  # 63 bits: fits any signed 64-bit reader


# The names the mask generator and the damage synthesiser know it by.
mask_seed = derive_seed
damage_seed = derive_seed
