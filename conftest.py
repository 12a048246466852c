"""pytest setup shared by the unit tests and the notebooks (nbval)."""

import os

# Chapters run in smoke mode under pytest unless told otherwise.
os.environ.setdefault("ALEXNET_MODE", "smoke")
# Progress bars write to stderr; they are noise to nbval.
os.environ.setdefault("TQDM_DISABLE", "1")


def pytest_collectstart(collector):
    """nbval compares stderr too; progress bars and warnings differ from run to run."""
    if str(getattr(collector, "path", "")).endswith(".ipynb") and hasattr(collector, "skip_compare"):
        collector.skip_compare = tuple(collector.skip_compare) + ("stderr",)
