"""The layer rules of DESIGN.md, read from the source: a module that imports against them fails.

Between the three layers: ``executor`` imports neither ``fakecluster`` nor ``scenarios``;
``fakecluster`` imports neither of the others. Inside fakecluster, its parts flow one way
(see ``fakecluster/__init__.py``): doors -> api -> kernel, model -> api.store -> kernel.
Every import counts, wherever it stands: at the top, inside a function, under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("executor", "fakecluster", "scenarios")

# which project packages each layer may import (itself always)
LAYERS = {"executor": set(), "fakecluster": set(), "scenarios": {"executor", "fakecluster"}}

# inside fakecluster: which modules each part may import, as name prefixes
FAKECLUSTER_PARTS = {
    "kernel": ("fakecluster.kernel",),
    "api": ("fakecluster.api", "fakecluster.kernel"),
    "model": ("fakecluster.model", "fakecluster.api.store", "fakecluster.kernel"),
    "faults": ("fakecluster.api.status",),
    "tenants": (),
    "doors": ("fakecluster.doors", "fakecluster.api", "fakecluster.kernel", "fakecluster.faults"),
    "cluster": ("fakecluster.kernel", "fakecluster.api", "fakecluster.model", "fakecluster.faults",
                "fakecluster.doors", "fakecluster.tenants", "fakecluster.cluster"),
    "": ("fakecluster",),   # the public face may import everything
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str, root: Path) -> bool:
    base = root.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in ``path``, relative imports resolved to full names."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - (node.level - 1)])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.append((node.lineno, submodule if is_module(submodule, root) else source))
    return found


def part_of(module: str) -> str:
    """The fakecluster part a module belongs to: 'kernel', 'api', ..., or '' for the package face."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def violations(root: Path) -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(path, root)
            where = f"{path.relative_to(root)}"
            for line, target in imports_of(path, root):
                top = target.split(".")[0]
                if top in PACKAGES and top != package and top not in LAYERS[package]:
                    found.append(f"{where}:{line}: {package}/ imports {target} (layers flow one way: "
                                 f"scenarios -> executor, fakecluster)")
                elif package == "fakecluster" and top == "fakecluster":
                    allowed = FAKECLUSTER_PARTS.get(part_of(module), ())
                    if not any(target == p or target.startswith(p + ".") for p in allowed):
                        found.append(f"{where}:{line}: fakecluster.{part_of(module)} imports {target}, "
                                     f"which it may not (allowed: {', '.join(allowed)})")
    return found


def test_every_module_imports_within_its_layer():
    assert violations(ROOT) == []


def test_every_fakecluster_module_belongs_to_a_part():
    modules = [module_name(p, ROOT) for p in (ROOT / "fakecluster").rglob("*.py")]
    assert modules and all(part_of(m) in FAKECLUSTER_PARTS for m in modules), modules


def write(root: Path, relative: str, text: str = "") -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small tree shaped like the project's, with no violations yet."""
    for package in PACKAGES:
        write(tmp_path, f"{package}/__init__.py")
    for part in ("kernel", "api", "model", "doors"):
        write(tmp_path, f"fakecluster/{part}/__init__.py")
    write(tmp_path, "fakecluster/kernel/engine.py", "import heapq\n")
    write(tmp_path, "fakecluster/api/status.py")
    write(tmp_path, "fakecluster/api/store.py", "from ..kernel.engine import Kernel\n")
    write(tmp_path, "fakecluster/api/server.py", "from . import status as errors\nfrom .store import X\n")
    write(tmp_path, "fakecluster/model/kubelet.py", "from ..api.store import X\n")
    write(tmp_path, "fakecluster/faults.py", "from .api import status\n")
    write(tmp_path, "fakecluster/doors/gateway.py", "from ..api.server import Reply\nfrom ..faults import F\n")
    write(tmp_path, "fakecluster/cluster.py", "from .doors.gateway import Gateway\n")
    write(tmp_path, "scenarios/world.py", "from executor.host import TaskStore\nfrom fakecluster import FakeCluster\n")
    assert violations(tmp_path) == []
    return tmp_path


@pytest.mark.parametrize("relative, text, expected", [
    ("executor/host.py", "from fakecluster import FakeCluster\n", "executor/ imports fakecluster"),
    ("executor/host.py", "def f():\n    import scenarios.world\n", "executor/ imports scenarios.world"),
    ("fakecluster/cluster.py", "from executor import KubernetesExecutor\n", "fakecluster/ imports executor"),
    ("fakecluster/kernel/engine.py", "from ..api.store import X\n", "fakecluster.kernel imports fakecluster.api.store"),
    ("fakecluster/api/store.py", "from ..model import kubelet\n", "fakecluster.api imports fakecluster.model.kubelet"),
    ("fakecluster/api/server.py", "from ..doors.gateway import G\n", "fakecluster.api imports fakecluster.doors.gateway"),
    ("fakecluster/model/kubelet.py", "from ..api.server import ApiServer\n",
     "fakecluster.model imports fakecluster.api.server"),
    ("fakecluster/doors/gateway.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
     "    from ..cluster import FakeCluster\n", "fakecluster.doors imports fakecluster.cluster"),
    ("fakecluster/faults.py", "from .doors import gateway\n", "fakecluster.faults imports fakecluster.doors.gateway"),
    ("fakecluster/api/server.py", "import fakecluster.cluster\n", "fakecluster.api imports fakecluster.cluster"),
])
def test_an_import_against_the_rules_is_named(tree: Path, relative: str, text: str, expected: str):
    write(tree, relative, text)
    found = violations(tree)
    assert len(found) == 1 and expected in found[0], found
    assert found[0].startswith(relative + ":")
