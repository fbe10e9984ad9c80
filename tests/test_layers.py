"""The house rules of the package's imports, read from the source (function-level imports too).

Floors, bottom to top: the core; data and runs; model; train, evaluate and toys; viz; the apps.
Each imports only what its row of ``ALLOWED`` names, no module imports the package's own
``__init__`` (the facade users import), there is no import cycle, and a function-level import
names an optional heavy library (or, in the CLI, a sub-command's module), never a module of
ours or of the standard library. Cycles are looked for among the imports Python runs, the
package ``__init__`` files on the way included. The checker is tested on a small package built
to break each rule.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lejepa_viz"

# (floor, module prefixes); a module belongs to the first floor with a matching prefix
FLOORS = [
    ("core", ("_checks", "distributed", "univariate", "multivariate", "sigreg")),
    ("data", ("data",)),
    ("runs", ("runs",)),
    ("model", ("model", "backbones")),
    ("train", ("train",)),
    ("evaluate", ("evaluate",)),
    ("toys", ("toys",)),
    ("viz", ("viz",)),
    ("apps", ("sweep", "gallery", "cli", "pictures", "__main__")),
]
BELOW_TRAIN = {"core", "data", "runs", "model"}
ALLOWED = {
    "core": {"core"},
    "data": {"core", "data"},
    "runs": {"core", "runs"},
    "model": {"core", "data", "runs", "model"},
    "train": BELOW_TRAIN | {"train", "evaluate.probes"},  # train may use evaluate's probes
    "evaluate": BELOW_TRAIN | {"evaluate"},
    "toys": BELOW_TRAIN | {"toys"},
    # viz draws: it may read the toys' types and fixed-cloud computations, never their loops
    "viz": BELOW_TRAIN | {"viz", "toys.clouds", "toys.knobs", "toys.trajectory"},
    "apps": {floor for floor, _ in FLOORS},
}
# libraries slow to import or needed on one path only (notebooks, videos, downloads, GPUs)
HEAVY = {"plotly", "ipywidgets", "IPython", "imageio", "imageio_ffmpeg", "sklearn", "skimage"}
HEAVY |= {"torchvision", "huggingface_hub", "safetensors", "triton", "kaleido"}
# torch's autograd-aware collectives: absent from builds without torch.distributed
OPTIONAL = {"torch.distributed.nn.functional"}
CLI_MODULES = ("cli",)  # whose sub-commands import their library module when they run


def modules(root: Path, name: str) -> dict[str, Path]:
    """``{dotted module name: file}`` of the package at ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        out[".".join((name, *parts))] = path
    return out


def imports(path: Path, module: str, known: dict[str, Path], name: str):
    """``(target, line, function_level)`` for every import of ``path`` (``module``), targets
    as dotted names (``from .x import y`` names the module ``x.y`` when there is one)."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - child.level + 1]
                    base = ".".join(base + ([child.module] if child.module else []))
                else:
                    base = child.module
                for alias in child.names:  # `from .x import y`: y may be a module itself
                    target = f"{base}.{alias.name}"
                    found.append((target if target in known else base, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def floor_of(module: str, name: str) -> str | None:
    rest = module[len(name) + 1 :]
    for floor, prefixes in FLOORS:
        if any(rest == p or rest.startswith(p + ".") for p in prefixes):
            return floor
    return None


def allows(floor: str, target: str, name: str) -> bool:
    rest = target[len(name) + 1 :]
    for allowed in ALLOWED[floor]:
        if allowed in ALLOWED:  # a whole floor
            if floor_of(target, name) == allowed:
                return True
        elif rest == allowed or rest.startswith(allowed + "."):  # one module of a floor
            return True
    return False


def problems(root: Path, name: str) -> list[str]:
    """Every broken rule of the package at ``root`` (named ``name``), one line each."""
    known = modules(root, name)
    stdlib = set(sys.stdlib_module_names)
    found, graph = [], {m: set() for m in known}
    # A module of ours that imports a heavy library at its top (Triton's kernels must be
    # module-level functions) is heavy itself: it too may only be imported where it is used.
    heavy_own = {
        module
        for module, path in known.items()
        if any(t.split(".")[0] in HEAVY and not f for t, _, f in imports(path, module, known, name))
    }
    for module, path in known.items():
        floor = floor_of(module, name)
        where = f"{path.relative_to(root.parent)}"
        for target, line, in_function in imports(path, module, known, name):
            top = target.split(".")[0]
            inside = top == name
            if inside:  # importing a.b.c runs a/__init__ and a/b/__init__ first, but not
                # this module's own packages: those are already running when it is imported
                parts = target.split(".")
                own = {".".join(module.split(".")[:k]) for k in range(1, module.count(".") + 2)}
                wanted = (".".join(parts[:k]) for k in range(2, len(parts) + 1))
                graph[module].update(p for p in wanted if p == target or p not in own)
            if module == name:
                continue  # the facade re-exports from every floor
            if inside and target == name:
                found.append(f"{where}:{line} imports the package facade {name}")
            elif inside and floor is None:
                found.append(f"{where}:{line}: module {module} belongs to no floor")
            elif inside and not allows(floor, target, name):
                found.append(f"{where}:{line}: {floor} imports {target} ({floor_of(target, name)})")
            if in_function:
                rest = module[len(name) + 1 :]
                cli = any(rest == m or rest.startswith(m + ".") for m in CLI_MODULES)
                heavy = top in HEAVY or target in OPTIONAL
                if (inside and not cli and target not in heavy_own) or (
                    not inside and (top in stdlib or not heavy)
                ):
                    found.append(f"{where}:{line}: function-level import of {target}")
    found += [f"import cycle among {', '.join(c)}" for c in cycles(graph)]
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The modules of each strongly connected component of more than one module (Tarjan):
    each component holds at least one cycle."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            strong(v)
    return out


def test_the_package_keeps_its_floors():
    assert problems(PACKAGE, "lejepa_viz") == []


def test_every_module_belongs_to_a_floor():
    names = modules(PACKAGE, "lejepa_viz")
    assert [m for m in names if m != "lejepa_viz" and floor_of(m, "lejepa_viz") is None] == []


@pytest.fixture
def broken(tmp_path):
    """A package ``pkg`` laid out like ours, with one broken rule of each kind."""
    root = tmp_path / "pkg"
    files = {
        "__init__.py": "from .sigreg import SIGReg\n",
        "sigreg.py": "from .viz import draw\nclass SIGReg: pass\n",  # core imports viz
        "viz/__init__.py": "from .draw import draw\n",
        "viz/draw.py": "from ..train.loop import train\nfrom ..toys import knobs\ndef draw(): pass\n",
        "train/__init__.py": "",
        "train/loop.py": "from ..evaluate import report\ndef train(): pass\n",
        "evaluate/__init__.py": "",
        "evaluate/report.py": "from ..train import loop\n",  # evaluate -> train: a cycle too
        "toys/__init__.py": "from . import loop\n",  # runs when viz reads the knobs
        "toys/knobs.py": "",
        "toys/loop.py": "from ..viz.draw import draw\n",  # a cycle through toys/__init__
        "toys/tiny.py": "def run():\n    import json\n    from ..data import x\n",
        "data/__init__.py": "import pkg\nx = 1\n",  # imports the facade
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_checker_finds_each_broken_rule(broken):
    found = "\n".join(problems(broken, "pkg"))
    assert "pkg/sigreg.py:1: core imports pkg.viz.draw (viz)" in found
    assert "pkg/viz/draw.py:1: viz imports pkg.train.loop (train)" in found
    assert "pkg/evaluate/report.py:1: evaluate imports pkg.train.loop (train)" in found
    assert "import cycle among pkg.evaluate.report, pkg.train.loop" in found
    assert "import cycle among pkg.toys, pkg.toys.loop, pkg.viz, pkg.viz.draw" in found
    assert "pkg/toys/tiny.py:2: function-level import of json" in found
    assert "pkg/toys/tiny.py:3: function-level import of pkg.data" in found
    assert "pkg/data/__init__.py:1 imports the package facade pkg" in found
    assert (
        "pkg/train/loop.py:1: train imports pkg.evaluate.report (evaluate)" in found
    )  # probes only
