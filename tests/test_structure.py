"""The library's layout: no import cycles, the names the chapters use still import, small
modules and functions, and a clean lint."""

import ast
import importlib
import json
import shutil
import subprocess

import pytest

from .helpers import ROOT

LIBRARY = ROOT / "alexnet_lib"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60


def library_imports() -> dict:
    """{module: set of alexnet_lib modules it imports}, from the source: top-level imports and
    imports inside functions alike."""
    graph = {}
    for path in sorted(LIBRARY.glob("*.py")):
        name = path.stem
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:  # from .x import y
                    found.add(node.module.split(".")[0])
                elif node.level == 1:  # from . import x
                    found.update(a.name for a in node.names)
                elif node.module == "alexnet_lib":  # from alexnet_lib import x
                    found.update(a.name for a in node.names)
                elif node.module and node.module.startswith("alexnet_lib."):
                    found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("alexnet_lib."))
        graph[name] = found - {name}
    return graph


def find_cycle(graph: dict):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, path + [nxt])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def test_cycle_finder_finds_a_cycle_it_is_shown():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_library_has_no_import_cycle():
    graph = library_imports()
    # the walk sees the imports (a check that cannot pass on an empty graph)
    assert {"layers", "util"} <= graph["model"] and "model" in graph["parallel"]
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_every_module_imports_only_modules_listed_above_it():
    """The package docstring lists the modules in order; each imports only earlier ones."""
    import alexnet_lib

    order = [line.split("``")[1] for line in alexnet_lib.__doc__.splitlines() if line.startswith("- ``")]
    modules = {p.stem for p in LIBRARY.glob("*.py")} - {"__init__", "__main__"}
    assert set(order) == modules, f"the package docstring lists {sorted(order)}; the package has {sorted(modules)}"
    for name, imported in library_imports().items():
        if name in ("__init__", "__main__"):
            continue
        later = {m for m in imported if order.index(m) > order.index(name)}
        assert not later, f"{name} imports {sorted(later)}, listed after it"


# Every name the chapters, tests and benches imported from alexnet_lib when the library was
# redesigned, from the path they used; each must keep working from that path.
NAMES_IN_USE = {
    "alexnet_lib.cli": ["build_model", "main"],
    "alexnet_lib.data": [
        "ImageFolderStream",
        "ImageTensors",
        "PROJECT_ROOT",
        "find_dataset",
        "load_dataset",
        "imagenet_samples",
        "display_path",
        "resize_shorter_and_crop",
        "scan_image_folder",
        "subsample",
        "DatasetNotFoundError",
        "DatasetLayoutError",
        "CorruptImageError",
        "data_roots",
        "cache_dir",
    ],
    "alexnet_lib.evaluate": ["evaluate", "predict", "topk_errors", "train_val_gap"],
    "alexnet_lib.experiments": [
        "Chapter",
        "RESULTS_DIR",
        "get_mode",
        "preset",
        "recorded_logs",
        "train_runs",
    ],
    "alexnet_lib.layers": [
        "LRN_ALPHA_CONVENTIONS",
        "LocalResponseNorm",
        "LocallyConnected2d",
        "PReLU",
        "local_response_norm",
        "window_sum",
    ],
    "alexnet_lib.model": [
        "AlexNet",
        "CifarNet",
        "POOLINGS",
        "PlainNet",
        "conv1_output_size",
        "count_parameters",
        "plain_init_std",
    ],
    "alexnet_lib.parallel": [
        "TowerParallel",
        "connectivity",
        "default_devices",
        "layer_costs",
        "stage_functions",
        "time_stages",
        "tower_memory",
    ],
    "alexnet_lib.train": [
        "History",
        "PaperSGD",
        "TrainConfig",
        "Trainer",
        "TrainingDivergedError",
        "checkpoint_paths",
        "epoch_batches",
        "epochs_to_levels",
        "epochs_to_reach",
        "keep_freed_memory",
        "load_latest_checkpoint",
        "parameter_groups",
    ],
    "alexnet_lib.transforms": [
        "Augment",
        "IMAGENET_PCA_EIGENVALUES",
        "IMAGENET_PCA_EIGENVECTORS",
        "centre_crop",
        "channel_mean",
        "eigenvector_angles",
        "mean_image",
        "pca_basis",
        "pca_colour",
        "random_crops",
        "random_flips",
        "resize_shorter_and_crop",
        "ten_crops",
    ],
    "alexnet_lib.viz": [
        "image_grid",
        "neighbours_figure",
        "predictions_figure",
        "to_display",
        "topk_bars",
        "tower_diagram",
        "tower_kernels",
        "training_curves",
    ],
}


@pytest.mark.parametrize("module", sorted(NAMES_IN_USE))
def test_names_in_use_still_import_from_their_paths(module):
    mod = importlib.import_module(module)
    missing = [name for name in NAMES_IN_USE[module] if not hasattr(mod, name)]
    assert not missing, f"{module} lost {missing}"


def test_every_alexnet_lib_import_of_the_chapters_resolves():
    """What the chapters import now (read from their code cells) exists where they import it from."""
    wanted = set()
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("alexnet_lib"):
                    wanted.update((node.module, a.name) for a in node.names)
    assert len(wanted) > 20  # the scan found the chapters' imports
    missing = [(m, n) for m, n in sorted(wanted) if not hasattr(importlib.import_module(m), n)
               and not is_module(f"{m}.{n}")]
    assert not missing, missing


def is_module(name: str) -> bool:
    """``from alexnet_lib import widgets``: a submodule, which the package holds only once imported."""
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        return False
    return True


def long_functions(path):
    """(name, lines) of every function longer than MAX_FUNCTION_LINES whose docstring gives no reason."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            reason = "long because" in (ast.get_docstring(node) or "").lower()
            if length > MAX_FUNCTION_LINES and not reason:
                out.append((node.name, length))
    return out


@pytest.mark.parametrize("path", sorted(LIBRARY.glob("*.py")), ids=lambda p: p.name)
def test_modules_and_functions_are_short(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.name} has {lines} lines (at most {MAX_MODULE_LINES})"
    assert not long_functions(path), f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long_functions(path)}"


def test_lint_is_clean():
    """ruff, configured in pyproject.toml (line length 120), finds nothing."""
    ruff = shutil.which("ruff", path=str(ROOT / ".venv" / "bin")) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
    proc = subprocess.run([ruff, "check", "--no-cache", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
