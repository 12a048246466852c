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


def module_of(path) -> str:
    """A library file's module, relative to the package: "model", "lrn" (lrn/__init__.py), "lrn.cpu"."""
    parts = path.relative_to(LIBRARY).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def library_imports() -> dict:
    """{module: set of alexnet_lib modules it imports}, from the source: top-level imports and
    imports inside functions alike. Modules of a sub-package are named "lrn.cpu"."""
    graph = {}
    modules = {module_of(p) for p in LIBRARY.rglob("*.py")}
    for path in sorted(LIBRARY.rglob("*.py")):
        name = module_of(path)
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - node.level + 1]
                stem = base + (node.module.split(".") if node.module else [])
                targets = [".".join(stem + [a.name]) for a in node.names] + [".".join(stem)]
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("alexnet_lib"):
                stem = node.module.split(".")[1:]
                targets = [".".join(stem + [a.name]) for a in node.names] + [".".join(stem)]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".", 1)[1] for a in node.names if a.name.startswith("alexnet_lib.")]
            # the longest importable module each import names (a name imported from a module is that module)
            found.update(t for t in targets if t in modules and not any(u.startswith(t + ".") for u in targets
                                                                         if u in modules))
        graph[name] = found - {name, ""}
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
    assert {"lrn.reference", "util"} <= graph["lrn"] | graph["lrn.cpu"] and "lrn.reference" in graph["lrn.cpu"]
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_every_module_imports_only_modules_listed_above_it():
    """The package docstring lists the modules in order; each imports only earlier ones."""
    import alexnet_lib

    order = [line.split("``")[1] for line in alexnet_lib.__doc__.splitlines() if line.startswith("- ``")]
    modules = {module_of(p).split(".")[0] for p in LIBRARY.rglob("*.py")} - {"__init__", "__main__"}
    assert set(order) == modules, f"the package docstring lists {sorted(order)}; the package has {sorted(modules)}"
    for name, imported in library_imports().items():
        if name in ("__init__", "__main__"):
            continue
        top = name.split(".")[0]
        later = {m for m in imported if m.split(".")[0] != top and order.index(m.split(".")[0]) > order.index(top)}
        assert not later, f"{name} imports {sorted(later)}, listed after it"


def test_a_sub_package_lists_its_modules_in_order_too():
    """A sub-package (``lrn``) lists its modules in its docstring; each imports only those above it,
    and its ``__init__`` may import them all."""
    for init in sorted(LIBRARY.glob("*/__init__.py")):
        package = init.parent.name
        doc = importlib.import_module(f"alexnet_lib.{package}").__doc__
        order = [line.split("``")[1] for line in doc.splitlines() if line.startswith("* ``")]
        inner = {module_of(p) for p in init.parent.glob("*.py")} - {package}
        assert {f"{package}.{m}" for m in order} == inner, f"{package}'s docstring lists {order}"
        for name, imported in library_imports().items():
            if name in inner:
                later = {m for m in imported if m in inner and order.index(m.split(".")[1]) > order.index(
                    name.split(".")[1])}
                assert not later, f"{name} imports {sorted(later)}, listed after it"




def defined_names() -> dict:
    """{module: names it defines at its top level (functions, classes, assignments)}, from the source.
    A name a module only imports is not defined there."""
    found = {}
    for path in sorted(LIBRARY.rglob("*.py")):
        parts = path.relative_to(LIBRARY).with_suffix("").parts
        module = ".".join(("alexnet_lib",) + (parts[:-1] if parts[-1] == "__init__" else parts))
        names = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(e.id for t in targets for e in ast.walk(t) if isinstance(e, ast.Name))
        found[module] = names
    return found


def imports_of(source: str, module: str | None = None) -> list:
    """[(line, imported module, name)] of every ``from alexnet_lib... import name`` in ``source``;
    relative imports are read from inside ``module``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level and module:
            base = module.split(".")[: -node.level] if not module.endswith("__init__") else module.split(".")
            target = ".".join(base + ([node.module] if node.module else []))
        elif node.module and node.module.startswith("alexnet_lib"):
            target = node.module
        else:
            continue
        out += [(node.lineno, target, a.name) for a in node.names]
    # a module imported whole (``from alexnet_lib import data as D``): every ``D.name`` it is used for
    modules = {a.asname or a.name: f"alexnet_lib.{a.name}" for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.ImportFrom) and node.module == "alexnet_lib" for a in node.names}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            out.append((node.lineno, modules[node.value.id], node.attr))
    return out


def code_of_the_project() -> dict:
    """{file: (its source, its module name or None)}: the library, tests, benches, tools, chapters."""
    files = {}
    for path in sorted(LIBRARY.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        files[path] = (path.read_text(), ".".join(parts))
    for folder in ("tests", "bench", "tools"):
        for path in sorted((ROOT / folder).glob("*.py")):
            files[path] = (path.read_text(), None)
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        cells = ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        code = "\n".join(line for c in cells for line in c.splitlines() if not line.lstrip().startswith(("%", "!")))
        files[nb] = (code, None)
    return files


def test_one_home_finder_sees_a_reexport():
    defined = {"alexnet_lib.a": {"f"}, "alexnet_lib.b": set()}
    assert imports_of("from .a import f", "alexnet_lib.b") == [(1, "alexnet_lib.a", "f")]
    found = [(m, n) for _, m, n in imports_of("from alexnet_lib.b import f") if n not in defined[m]]
    assert found == [("alexnet_lib.b", "f")]  # b only imports f: importing it from b is a second home
    used = imports_of("from alexnet_lib import b as B\nB.f()")
    assert ("alexnet_lib.b", "f") in [(m, n) for _, m, n in used]  # so is reaching it as B.f


def test_every_public_name_is_imported_from_its_one_home():
    """Issue-proof "one name, one home": whatever imports a name of alexnet_lib (the library itself,
    the tests, benches, tools and chapters) imports it from the module that defines it, never
    through a module that merely imports it too."""
    defined = defined_names()
    wrong = []
    for path, (source, module) in code_of_the_project().items():
        for line, target, name in imports_of(source, module):
            if target in defined and name not in defined[target] and f"{target}.{name}" not in defined:
                homes = [m for m, names in defined.items() if name in names]
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {name} from {target} (its home: {homes})")
    assert len(defined) > 25  # the scan found the library
    assert not wrong, "\n".join(wrong)


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


@pytest.mark.parametrize("path", sorted(LIBRARY.rglob("*.py")), ids=lambda p: str(p.relative_to(LIBRARY)))
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


def test_the_library_keeps_no_reexports():
    """A name kept importable from an older home is a second home: no import in the library is kept
    only to be imported from there (ruff's F401 silenced)."""
    kept = [f"{p.relative_to(ROOT)}:{i}" for p in sorted(LIBRARY.rglob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if "noqa: F401" in line]
    assert not kept, kept
