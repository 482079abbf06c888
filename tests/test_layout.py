"""The structure rules, enforced: every module imports on its own, the import graph has no
cycle, the pipeline layers stay clear of the operator tools and the dev stack, modules and
functions stay small enough to read, and pyproject lists every package.

The rules read the source (AST and line counts), so they hold for code no test exercises.
Known breaches in code being reworked elsewhere are named in the ``KNOWN_*`` allow-lists
below, each with the reason; ``test_allow_lists_are_not_stale`` fails once an entry is no
longer needed, so the lists only ever shrink.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Top-level code folders and the import name each one has (pyproject's package-dir).
TREES = {"streams": "tillbridge.streams", "connectors": "tillbridge.connectors",
         "schemas": "tillbridge.schemas", "devstack": "tillbridge.devstack"}
#: Folders outside TREES that the size rules also cover (tests/ is exempt).
EXTRA_SIZED = ("bench",)

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: A function may run longer than MAX_FUNCTION_LINES when the line right above it (above
#: its decorators, if any) is a comment starting with this marker and saying why.
LONG_MARKER = "# long:"

#: The pipeline layers (and what they are made of) must not reach for the operator tools or
#: the dev stack: a worker in production has neither.
LAYERS = tuple(f"tillbridge.streams.{p}" for p in
               ("runtime", "stages", "flows", "ledger", "refdata", "windows", "observe",
                "availability"))
FORBIDDEN_FOR_LAYERS = ("tillbridge.streams.ops", "tillbridge.devstack")

# -- allow-lists: breaches in files outside this work; remove an entry once it is fixed ------

_RUNTIME = "streams/runtime is being reworked (runtime work); split it there"
_FLOWS = "streams/flows is being reworked; split it there"
_LEDGER = "streams/ledger is being reworked; split it there"
_STAGES = "streams/stages is being reworked; split it there"
_NETSUITE = "connectors/netsuite is being reworked; split it there"
_UNOWNED = "outside the layout work's files; split by whoever changes it next"

#: (importer, imported) edges left out of the cycle check.
KNOWN_CYCLE_EDGES: dict[tuple[str, str], str] = {}
#: Modules allowed over MAX_MODULE_LINES.
KNOWN_LONG_MODULES: dict[str, str] = {}
#: "module:qualified.function" allowed over MAX_FUNCTION_LINES without a marker.
KNOWN_LONG_FUNCTIONS: dict[str, str] = {
    "tillbridge.streams.stages.enrich_return:resolve_return": _STAGES,
    "tillbridge.streams.refdata.snapshot:ReferenceData.from_rows": _UNOWNED,
    "tillbridge.connectors.pos.publish:publish_generated": _UNOWNED,
    "tillbridge.devstack.netsuite_sim.suiteql:run": _UNOWNED,
    "tillbridge.devstack.pos.generator:_SaleFactory.sale": _UNOWNED,
}
#: (importer, imported) edges allowed across the layering rule.
KNOWN_LAYER_BREACHES: dict[tuple[str, str], str] = {}
#: Modules allowed to fail a fresh-interpreter import.
KNOWN_IMPORT_FAILURES: dict[str, str] = {}


# -- reading the source ----------------------------------------------------------------------

@dataclass(frozen=True)
class Import:
    """One import statement's target as written (absolute), where it is and how deep."""

    target: str
    names: tuple[str, ...]  # for `from target import a, b`; empty for `import target`
    line: int
    in_function: bool


@dataclass(frozen=True)
class Module:
    name: str
    path: Path

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    @property
    def package(self) -> str:
        return self.name if self.is_package else self.name.rpartition(".")[0]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = [TREES[rel.parts[0]], *rel.with_suffix("").parts[1:]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Module]:
    """Every module under TREES by import name."""
    found = {}
    for folder in TREES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = _module_name(path)
            found[name] = Module(name, path)
    return found


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.package.split(".")
    base = base[:len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imports(module: Module) -> list[Import]:
    """Every import in the file, module level (TYPE_CHECKING blocks included) and in
    functions: a cycle through a function-level import is still a design knot."""
    out: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                out.extend(Import(a.name, (), child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                out.append(Import(_absolute(module, child), tuple(a.name for a in child.names),
                                  child.lineno, in_function))
            visit(child, in_function or isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(_tree(module.path), False)
    return out


def targets(imp: Import) -> set[str]:
    """The internal modules an import depends on: ``from pkg import name`` means the
    module ``pkg.name`` when there is one, else ``pkg`` itself."""
    known = modules()
    if not imp.names:
        return {imp.target} & known.keys()
    out = set()
    for name in imp.names:
        sub = f"{imp.target}.{name}"
        if sub in known:
            out.add(sub)
        elif imp.target in known:
            out.add(imp.target)
    return out


@cache
def graph() -> dict[str, set[str]]:
    """importer -> imported, internal modules only."""
    return {name: {t for imp in imports(m) for t in targets(imp) if t != name}
            for name, m in modules().items()}


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components with more than one module (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def cycle_path(edges: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle inside a component, for the failure message: a -> b -> ... -> a."""
    members = set(component)
    start = component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:  # breadth first, so the cycle shown is a shortest one through `start`
        nxt = []
        for node in frontier:
            for child in sorted(edges[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if child not in parents:
                    parents[child] = node
                    nxt.append(child)
        frontier = nxt
    return component


def _without(edges: dict[str, set[str]], dropped: set[tuple[str, str]]
             ) -> dict[str, set[str]]:
    return {a: {b for b in bs if (a, b) not in dropped} for a, bs in edges.items()}


# -- 1. every module imports in a fresh interpreter ------------------------------------------

# Run in a new interpreter (pytest has imported half the project already). It preloads the
# third-party packages the project imports at module level, then forks one child per module:
# each child starts with no `tillbridge` module loaded, which is what "imports on its own"
# means, without paying a quarter second of third-party start-up a hundred times over.
# Only top-level packages are preloaded: importing any submodule runs its top level anyway.
_IMPORT_EACH = r"""
import importlib, json, os, signal, sys, time, traceback
names, preload, logs, out, timeout = (json.loads(sys.argv[1]), json.loads(sys.argv[2]),
                                      sys.argv[3], sys.argv[4], float(sys.argv[5]))
for pkg in preload:
    try:
        importlib.import_module(pkg)
    except Exception:
        pass  # the module that needs it reports the failure
assert not [m for m in sys.modules if m.startswith("tillbridge.")], "preload imported us"
running, failed, todo, killed = {}, {}, list(names), set()
def spawn(name):
    log = os.path.join(logs, name + ".log")
    pid = os.fork()
    if pid == 0:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        try:
            importlib.import_module(name)
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
        os._exit(0)
    running[pid] = (name, log, time.monotonic())
while todo or running:
    while todo and len(running) < (os.cpu_count() or 1):
        spawn(todo.pop(0))
    pid, status = os.waitpid(-1, os.WNOHANG)
    if pid == 0:
        for pid, (name, log, started) in list(running.items()):
            if pid not in killed and time.monotonic() - started > timeout:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        time.sleep(0.005)
        continue
    name, log, _ = running.pop(pid)
    if status:
        with open(log, errors="replace") as fh:
            text = fh.read()[-3000:]
        why = f"timed out after {timeout:g}s" if pid in killed else f"wait status {status}"
        failed[name] = f"{why}\n{text}"
with open(out, "w") as fh:
    json.dump(failed, fh)
"""


def _third_party_roots() -> list[str]:
    roots = {imp.target.split(".")[0] for m in modules().values() for imp in imports(m)
             if not imp.in_function and imp.target}
    return sorted(roots - set(sys.stdlib_module_names) - {"tillbridge", "__future__"})


@cache
def import_failures() -> dict[str, str]:
    """Module -> its traceback, for each module that fails to import on its own."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "failed.json"
        proc = subprocess.run(
            [sys.executable, "-c", _IMPORT_EACH, json.dumps(sorted(modules())),
             json.dumps(_third_party_roots()), tmp, str(out), "60"],
            cwd=tmp, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        failed: dict[str, str] = json.loads(out.read_text())
    return failed


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_every_module_imports_in_a_fresh_interpreter() -> None:
    started = time.monotonic()
    failed = import_failures()
    unexpected = {m: log for m, log in failed.items() if m not in KNOWN_IMPORT_FAILURES}
    assert not unexpected, "\n\n".join(f"{m}:\n{log}" for m, log in sorted(unexpected.items()))
    print(f"{len(modules())} modules imported one by one in {time.monotonic() - started:.1f}s")


def test_the_modules_imported_are_this_checkouts() -> None:
    """The fresh interpreters import the installed `tillbridge`: make sure it is this tree."""
    code = ("import importlib.util, json, sys; print(json.dumps({n: list(importlib.util."
            "find_spec(n).submodule_search_locations) for n in sys.argv[1:]}))")
    with tempfile.TemporaryDirectory() as tmp:  # an empty cwd: nothing importable by accident
        proc = subprocess.run([sys.executable, "-c", code, *sorted(TREES.values())],
                              capture_output=True, text=True, timeout=60, cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    where = json.loads(proc.stdout)
    assert {n: [str(Path(p).resolve()) for p in paths] for n, paths in where.items()} == {
        n: [str(ROOT / folder)] for folder, n in TREES.items()}


# -- 2. no import cycles ---------------------------------------------------------------------

def _edge_lines(importer: str, imported: str) -> str:
    m = modules()[importer]
    lines = sorted({imp.line for imp in imports(m) if imported in targets(imp)})
    return f"{m.path.relative_to(ROOT)}:{','.join(map(str, lines))}"


def test_no_import_cycles() -> None:
    edges = _without(graph(), set(KNOWN_CYCLE_EDGES))
    problems = []
    for component in strongly_connected(edges):
        path = cycle_path(edges, component)
        hops = "\n".join(f"    {a} -> {b}  ({_edge_lines(a, b)})"
                         for a, b in zip(path, path[1:], strict=False))
        problems.append(f"cycle among {', '.join(component)}:\n{hops}")
    assert not problems, "\n".join(problems)


def test_cycle_finder_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert strongly_connected(edges) == [["a", "b", "c"]]
    assert cycle_path(edges, ["a", "b", "c"]) == ["a", "b", "c", "a"]


# -- 3. layering -----------------------------------------------------------------------------

def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def layer_breaches() -> dict[tuple[str, str], int]:
    """(pipeline module, forbidden module) -> line; the target as written, so an import of
    a name that does not exist (yet) counts as well."""
    out = {}
    for name, m in modules().items():
        if not _within(name, LAYERS):
            continue
        for imp in imports(m):
            wanted = targets(imp) or {imp.target}
            for target in wanted:
                if _within(target, FORBIDDEN_FOR_LAYERS):
                    out.setdefault((name, target), imp.line)
    return out


def test_pipeline_layers_do_not_import_ops_or_devstack() -> None:
    bad = {edge: line for edge, line in layer_breaches().items()
           if edge not in KNOWN_LAYER_BREACHES}
    assert not bad, "\n".join(f"{a} imports {b} ({modules()[a].path.relative_to(ROOT)}:{line})"
                              for (a, b), line in sorted(bad.items()))


# -- 4. sizes --------------------------------------------------------------------------------

def _sized_files() -> Iterator[tuple[str, Path]]:
    for m in modules().values():
        yield m.name, m.path
    for folder in EXTRA_SIZED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            yield ".".join(rel.parts).removesuffix(".__init__"), path


def long_modules() -> dict[str, int]:
    out = {}
    for name, path in _sized_files():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES:
            out[name] = n
    return out


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.FunctionDef |
                                                                ast.AsyncFunctionDef]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name, node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def long_functions_in(source: str) -> dict[str, tuple[int, int]]:
    """"function" -> (line, length) for the functions over the limit not marked as long."""
    lines = source.splitlines()
    out = {}
    for qualname, fn in _functions(ast.parse(source)):
        length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
        first = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
        above = lines[first - 2].strip() if first > 1 else ""
        marked = above.startswith(LONG_MARKER) and above[len(LONG_MARKER):].strip()
        if length > MAX_FUNCTION_LINES and not marked:
            out[qualname] = (fn.lineno, length)
    return out


def long_functions() -> dict[str, tuple[Path, int, int]]:
    """"module:function" -> (file, line, length) for unmarked functions over the limit."""
    return {f"{name}:{qualname}": (path, line, length)
            for name, path in _sized_files()
            for qualname, (line, length) in long_functions_in(
                path.read_text(encoding="utf-8")).items()}


def test_no_module_is_too_long() -> None:
    bad = {m: n for m, n in long_modules().items() if m not in KNOWN_LONG_MODULES}
    assert not bad, "\n".join(f"{m}: {n} lines (max {MAX_MODULE_LINES})"
                              for m, n in sorted(bad.items()))


def test_no_function_is_too_long_without_saying_why() -> None:
    bad = {f: v for f, v in long_functions().items() if f not in KNOWN_LONG_FUNCTIONS}
    assert not bad, (
        f"functions over {MAX_FUNCTION_LINES} lines; split them, or put a `{LONG_MARKER} "
        "<why>` comment on the line above:\n" + "\n".join(
            f"{path.relative_to(ROOT)}:{line} {f}: {n} lines"
            for f, (path, line, n) in sorted(bad.items())))


def test_long_marker_is_honoured() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    src = (f"{LONG_MARKER} a lookup table\n@staticmethod\ndef marked():\n{body}\n"
           f"# long:\ndef no_reason():\n{body}\n"
           f"def unmarked():\n{body}\ndef short():\n    pass\n")
    assert set(long_functions_in(src)) == {"no_reason", "unmarked"}


# -- 5. packaging ----------------------------------------------------------------------------

def test_pyproject_lists_every_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"]
    assert {name: folder for name, folder in config["package-dir"].items()} == {
        name: folder for folder, name in TREES.items()}
    listed = set(config["packages"])
    on_disk = {m.name for m in modules().values() if m.is_package}
    assert sorted(on_disk - listed) == [], "packages missing from pyproject's `packages`"
    assert sorted(listed - on_disk) == [], "pyproject lists packages that do not exist"


# -- the allow-lists only shrink -------------------------------------------------------------

def test_allow_lists_are_not_stale() -> None:
    """Each entry must still be needed; delete the ones that are not."""
    cycle_edges = {(a, b) for component in strongly_connected(graph())
                   for a in component for b in graph()[a] & set(component)}
    stale = {
        "KNOWN_CYCLE_EDGES": set(KNOWN_CYCLE_EDGES) - cycle_edges,
        "KNOWN_LONG_MODULES": set(KNOWN_LONG_MODULES) - set(long_modules()),
        "KNOWN_LONG_FUNCTIONS": set(KNOWN_LONG_FUNCTIONS) - set(long_functions()),
        "KNOWN_LAYER_BREACHES": set(KNOWN_LAYER_BREACHES) - set(layer_breaches()),
        "KNOWN_IMPORT_FAILURES": set(KNOWN_IMPORT_FAILURES) - set(
            import_failures() if KNOWN_IMPORT_FAILURES else ()),
    }
    assert not {k: v for k, v in stale.items() if v}, stale
