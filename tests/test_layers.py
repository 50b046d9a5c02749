"""rollforge's modules form layers that only point down: a module imports from its own layer or lower ones,
never from a higher one, and no chain of imports comes back to where it started. Walked from the source with
:mod:`ast` (imports inside functions count too: deferring an import does not change what depends on what).

The layer order, lowest first. A module belongs to the layer of the longest entry that names it or a
package above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "rollforge"

LAYERS: list[tuple[str, str]] = [
    # what every other module may use: errors, the typed line, the records, what one line may hold, bytes and
    # files (reading, checked outputs, leftovers, locks), and worker processes that die with their run
    (
        "foundation",
        "version errors schema rewards thinking identity rollout limits progress workers parallel "
        "io io.atomic io.sources io.lines",
    ),
    # bytes -> conversation: the conversion rules, and the cheap first look that shares their vocabulary
    ("conversion", "tools convert head decode"),
    # what to keep and how to write it: options, filters, formats, pairing, and the reason codes they make
    (
        "rules",
        "environments mix success where labels tokens dedup decontam options filtering filters export pairs "
        "reasons empty",
    ),
    # reading rollouts files into records, and counting what is in them
    ("reading", "io.read env_stats stats"),
    # running a job: read every line once (locally or on Ray), select, write
    ("engine", "engine"),
    # the commands' library functions, and the validation report
    ("pipelines", "pipeline report"),
    # releases: recipe, build, manifest, card, diff
    ("releases", "build"),
    # the rest of the loop: curate, train, collect, compare
    ("loop", "review lineage train collect compare example tiny toy loop"),
    # the public Python API (the package's __init__ re-exports it)
    ("api", "api rollforge"),
    # the command line: a thin shell over the API
    ("cli", "cli"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def layer_of(module: str) -> int:
    name = module.removeprefix(PACKAGE + ".") if module != PACKAGE else PACKAGE
    best, found = -1, None
    for level, (_, entries) in enumerate(LAYERS):
        for entry in entries.split():
            covers = name == entry or name.startswith(entry + ".")
            if covers and len(entry) > best:
                best, found = len(entry), level
    assert found is not None, f"{module} is in no layer: add it to LAYERS"
    return found


def imports_of(module: str) -> set[str]:
    """The rollforge modules ``module`` imports (``from rollforge.x import y`` is rollforge.x.y when y is a
    module, else rollforge.x)."""
    tree = ast.parse(MODULES[module].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return {name for name in found if name != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    mine = layer_of(module)
    upward = sorted(
        f"{other} ({LAYERS[layer_of(other)][0]})" for other in GRAPH[module] if layer_of(other) > mine
    )
    assert not upward, f"{module} ({LAYERS[mine][0]}) imports from a higher layer: {', '.join(upward)}"


def test_no_import_cycles() -> None:
    """Depth-first search for a back edge; the first cycle found is named in full."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for other in sorted(GRAPH[module]):
            if state.get(other) == 1:
                return [*path[path.index(other) :], other]
            if other not in state and (cycle := visit(other)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(GRAPH):
        if module not in state and (cycle := visit(module)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_no_module_imports_another_ones_private_names() -> None:
    """A name with a leading underscore is its module's own business (the Ray engine, for one, calls the
    local engine's public functions, not its helpers)."""
    private = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
                names = [a.name for a in node.names if a.name.startswith("_") and not a.name.endswith("__")]
                private += [f"{module}: {node.module}.{name}" for name in names]
    assert not private, private


def test_the_walk_sees_real_edges() -> None:
    """The test reads imports: a known edge is found, and a package's own __init__ is a module."""
    assert "rollforge.convert" in GRAPH["rollforge.decode"]
    assert "rollforge.report" in MODULES
