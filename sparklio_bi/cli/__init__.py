"""The `sparklio-bi` command line: thin wrappers that parse options, call one library function
and turn expected failures into one clear line with a non-zero exit. One module per command
family, each adding its commands to the one group (`base.main`); all are loaded here."""
from __future__ import annotations

import importlib
import pkgutil

from sparklio_bi.cli.base import main

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):  # __main__ runs the group
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["main"]
