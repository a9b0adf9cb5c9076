"""Imports every command module so that each registers itself on the app.

The import order is the order of ``pconv --help``: the data flow of a project.
"""

from . import gen_masks, train, evaluate, export, detect, restore  # noqa: F401, I001
