"""The Great Expectations suites of the input formats, and how a batch is validated against one (validate.py).

Every module here that imports Great Expectations is imported through this package, so this is where GX's import
is made cheaper: GX imports scipy.stats (0.6 of its ~2 s) only for expect_column_kl_divergence_to_be_less_than,
which no suite here uses. Every run that validates a delivery pays the import, so scipy.stats is registered to be
loaded on first use (importlib.util.LazyLoader, the recipe of the Python documentation) rather than with GX.
Python 3.11's LazyLoader takes no lock: a first use from two threads at once could run scipy.stats twice. Nothing
here uses it; a suite that did would load it in the writer's thread, which validates one batch at a time.
"""

from __future__ import annotations

import importlib.util
import sys


def _load_on_first_use(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    setattr(sys.modules[parent], child, module)  # what importing a submodule does, so `from scipy import stats` finds it


_load_on_first_use("scipy.stats")
