"""The import graph of fcdist, read from the source with ast: no module imports itself back through others, and
no pipeline stage imports a later one, so each stage can be read, tested and run knowing only what precedes it.

Every import counts, also one inside a function or under TYPE_CHECKING: a late import hides a circle from
Python's loader, not from a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "fcdist"

# fcdist's top-level modules and subpackages in order, first to last. A module may import modules of its own
# layer or an earlier one.
LAYERS = [
    # shared by every stage: errors, config, atomic writes, and the runtime (device, dtype, attention and its KV cache,
    # tokenizer, shard of a job array); __init__ is the package's docstring
    {"__init__", "errors", "atomic", "config", "runtime"},
    {"data"},  # synth, load and validate, render
    # loading pretrained models, 4-bit bases and LoRA adapters for training, gather and inference (model/load.py,
    # quant.py, lora.py, moved out of those stages), and the tiny test model, its tokenizer trained on data's rows
    {"model"},
    {"preprocess"},  # tokenize and pack
    {"checkpoints", "layout"},  # runs/<name>/ and its checkpoints: written by train, read by gather and infer
    {"train"},
    {"gather"},
    {"infer"},
    {"score"},  # a package: the stage in __init__, its concerns (calls, values, matching, bfcl_rules, ...) beside it
    {"cli", "demo", "submit", "plan", "stages", "evaluate"},  # drivers: the stage chain, and what starts (or plans) it
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The fcdist modules ``path`` imports (``from fcdist.x import y`` is fcdist.x.y when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            names = {f"{node.module}.{alias.name}" for alias in node.names}
            found |= (names & modules) or {node.module}
    return {name for name in found if name in modules} - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): imported_modules(path, modules) for path in paths}


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"  # fcdist.train.model -> train
    for index, layer in enumerate(LAYERS):
        if top in layer:
            return index
    raise AssertionError(f"{module} is in no layer of LAYERS: place it in the pipeline order")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}  # module -> "open" while on the path, "done" after

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target, path + [target])):
                return cycle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module, [module])):
            return cycle
    return None


def test_the_graph_is_read():
    graph = import_graph()
    assert "fcdist.runtime" in graph["fcdist.train.model"]
    assert "fcdist.train.data" in graph["fcdist.train.model"]  # imported inside a function: counted too


def test_no_import_circle():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()))


def test_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]


def test_no_stage_imports_a_later_one():
    late = [f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
            for module, targets in sorted(import_graph().items()) for target in sorted(targets)
            if layer_of(target) > layer_of(module)]
    assert not late, "\n".join(late)
