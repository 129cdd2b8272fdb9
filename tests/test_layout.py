"""The package layout shows the flow: no import circle, no upward import, docstrings that
say where each module sits (issue: house in order)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import exoperiod

PACKAGE = Path(exoperiod.__file__).parent
#: Modules both sides use; they import no other layer.
BASE = {"_version", "checkpoint", "config", "constants", "errors", "files", "grid", "orbits", "paths", "plotting"}
#: Which layers each layer may import.
ALLOWED = {"base": {"base"}, "search": {"base", "search"}, "learning": {"base", "search", "learning"},
           "interface": {"base", "search", "learning", "interface"}}


def layer(module: str) -> str:
    """The layer of ``exoperiod.<...>``: base, search, learning or interface (cli, the package)."""
    parts = module.split(".")[1:]
    if parts and parts[0] in ("search", "learning"):
        return parts[0]
    if parts and parts[0] in BASE:
        return "base"
    return "interface"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Nodes under ``if TYPE_CHECKING:``: annotations only, never executed."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return skip


def imports(path: Path) -> set[str]:
    """The exoperiod modules ``path`` imports, at module level or inside functions."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree)
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip or not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        elif node.module and node.module.split(".")[0] == "exoperiod":
            target = node.module
        else:
            continue
        # `from . import fold` imports the submodule, not the package
        submodules = [f"{target}.{a.name}" for a in node.names
                      if (PACKAGE.parent / f"{target}.{a.name}".replace(".", "/")).with_suffix(".py").is_file()]
        found.update(submodules or [target])
    return found - {module}


GRAPH = {_module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_the_walk_sees_lazy_imports():
    # predict imports views inside a function (to keep `import exoperiod` fast)
    assert "exoperiod.search.views" in GRAPH["exoperiod.search.predict"]
    assert "exoperiod.search.fold" in GRAPH["exoperiod.search.model"]


def test_no_import_circle():
    graphlib.TopologicalSorter(GRAPH).prepare()  # raises CycleError with the circle


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_upward_import(module):
    upward = {m for m in GRAPH[module] if layer(m) not in ALLOWED[layer(module)]}
    assert not upward, f"{module} ({layer(module)}) imports {sorted(upward)}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if layer(m) != "interface"))
def test_every_module_says_its_place_in_the_flow(module):
    path = PACKAGE.parent / module.replace(".", "/")
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert "flow" in doc.lower(), f"{path}: the docstring does not say where the module sits in the flow"


def test_the_public_api_is_importable_from_the_package():
    for name in exoperiod.__all__:
        assert getattr(exoperiod, name) is not None


def test_every_user_error_is_an_exoperiod_error():
    from exoperiod.errors import ExoperiodError

    errors = [getattr(exoperiod, name) for name in exoperiod.__all__ if name.endswith("Error")]
    from exoperiod.learning.catalog import CatalogError
    from exoperiod.learning.datasets import DatasetError, DownloadError, MastError
    from exoperiod.learning.train import TrainError
    from exoperiod.search.batch import ClusterError
    from exoperiod.search.outputs import OutputError

    errors += [CatalogError, DatasetError, DownloadError, MastError, TrainError, ClusterError, OutputError]
    assert all(issubclass(e, ExoperiodError) for e in errors)
    assert len(errors) >= 13
