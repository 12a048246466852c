"""pytest setup shared by the unit tests and the notebooks (nbval)."""

import os

# Chapters run in smoke mode under pytest unless told otherwise.
os.environ.setdefault("ALEXNET_MODE", "smoke")
# Progress bars write to stderr; they are noise to nbval.
os.environ.setdefault("TQDM_DISABLE", "1")

#: Cells tagged with this print facts of the data (class counts, photo sizes): checked against
#: the committed outputs with the real data, not on the embedded sample.
DATA_DEPENDENT = "data-dependent"


def using_the_sample() -> bool:
    """Whether some dataset a chapter reads would come from the embedded sample (data/sample)."""
    from alexnet_lib.data import _locate_in, data_roots

    real = data_roots(sample=False)
    return any(all(_locate_in(name, root) is None for _, root in real)
               for name in ("cifar10", "imagenette", "imagenet-samples"))


def pytest_collectstart(collector):
    """nbval compares stderr too; progress bars and warnings differ from run to run."""
    if str(getattr(collector, "path", "")).endswith(".ipynb") and hasattr(collector, "skip_compare"):
        collector.skip_compare = tuple(collector.skip_compare) + ("stderr",)


def pytest_collection_modifyitems(config, items):
    """On the embedded sample, the outputs of data-dependent cells are not compared (they are run)."""
    cells = [i for i in items if hasattr(i, "cell") and hasattr(i, "options")]
    if cells and using_the_sample():
        for item in cells:
            if DATA_DEPENDENT in item.cell.get("metadata", {}).get("tags", []):
                item.options["check"] = False
