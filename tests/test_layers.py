"""The packages import each other in one direction only: spec -> gateware, driver -> simulator -> lab.

Ref: docs/architecture.md, "Layers".  Every ``import`` counts, also one inside
a function: the driver must install and run without the packages above it.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

#: Each package's folder.
PACKAGES = {
    "splitnic_spec": REPO_ROOT / "spec" / "splitnic_spec",
    "splitnic_gateware": REPO_ROOT / "gateware" / "splitnic_gateware",
    "splitnic": REPO_ROOT / "hostdrv" / "splitnic",
    "splitnic_sim": REPO_ROOT / "sim" / "splitnic_sim",
    "splitnic_lab": REPO_ROOT / "lab" / "splitnic_lab",
}
#: What each package may import (besides itself): the layers of docs/architecture.md.
LAYERS = {
    "splitnic_spec": set(),
    "splitnic_gateware": {"splitnic_spec"},
    "splitnic": {"splitnic_spec"},
    "splitnic_sim": {"splitnic_spec", "splitnic_gateware", "splitnic"},
    "splitnic_lab": {"splitnic_spec", "splitnic", "splitnic_sim"},
}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """``(line, top-level module)`` of every absolute import in a Python file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def layer_violations(packages: dict[str, Path], layers: dict[str, set[str]]) -> list[str]:
    """Every import of one of ``packages`` that its importer's layer does not allow."""
    problems = []
    for name, folder in packages.items():
        for path in sorted(folder.rglob("*.py")):
            for line, module in imported_packages(path):
                if module in packages and module != name and module not in layers[name]:
                    problems.append(f"{path.relative_to(folder.parent.parent)}:{line}: {name} imports {module} "
                                    f"(it may import only {', '.join(sorted(layers[name])) or 'nothing of ours'})")
    return problems


def test_the_layers_have_no_cycle() -> None:
    assert list(TopologicalSorter(LAYERS).static_order())[0] == "splitnic_spec"


def test_no_package_imports_across_its_layer() -> None:
    assert layer_violations(PACKAGES, LAYERS) == []


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The check itself: a driver module that imports the simulator, even inside a function, is named."""
    driver, sim = tmp_path / "hostdrv" / "splitnic", tmp_path / "sim" / "splitnic_sim"
    for folder in (driver, sim):
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
    (driver / "demo.py").write_text("import os\n\ndef run():\n    from splitnic_sim.server import SimNic\n")
    problems = layer_violations({"splitnic": driver, "splitnic_sim": sim},
                                {"splitnic": set(), "splitnic_sim": {"splitnic"}})
    assert problems == ["hostdrv/splitnic/demo.py:4: splitnic imports splitnic_sim (it may import only nothing of ours)"]


def test_a_circle_between_layers_is_caught() -> None:
    with pytest.raises(CycleError):
        list(TopologicalSorter(LAYERS | {"splitnic_spec": {"splitnic"}}).static_order())
