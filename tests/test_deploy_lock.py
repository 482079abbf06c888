"""constraints.txt keeps up with pyproject.toml, and every install uses it.

A dependency added to pyproject.toml without `make lock` would install unpinned (a
different version on each machine); a range narrowed past the pinned version would make
`make install` fail on a fresh machine only. Both fail here first.
"""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy_support import ROOT

CONSTRAINTS = ROOT / "constraints.txt"


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and re.fullmatch(r"[\w.+!-]+", version), f"not a pin: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    texts = project["dependencies"] + [r for group in ("dev", "test")
                                       for r in project["optional-dependencies"][group]]
    return [Requirement(t) for t in texts]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = _pins()
    missing = [str(r) for r in _declared() if canonicalize_name(r.name) not in pins]
    assert not missing, f"not in constraints.txt (run `make lock`): {missing}"
    outside = [f"{r} (pinned {pins[canonicalize_name(r.name)]})" for r in _declared()
               if not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)]
    assert not outside, f"pins outside the declared range (run `make lock`): {outside}"


def test_the_file_pins_each_package_once_and_not_tillbridge_itself() -> None:
    names = [canonicalize_name(line.partition("==")[0])
             for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(names) == len(set(names))
    assert "tillbridge" not in names and "pip" in names


def test_every_install_uses_the_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    stamp_rule = re.search(r"(?ms)^\$\(STAMP\):.*?(?=^\S)", makefile)
    assert stamp_rule, "the Makefile's install rule"
    installs = re.findall(r"pip install[^\n]*", stamp_rule.group())
    assert installs and all("-c $(CONSTRAINTS)" in line for line in installs), installs
    assert re.search(r"(?m)^CONSTRAINTS\s*:?=\s*constraints\.txt$", makefile)
    assert "$(CONSTRAINTS)" in stamp_rule.group().splitlines()[0], "reinstall when it changes"
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"(?m)^COPY [^\n]*\bconstraints\.txt\b", dockerfile)
    image_installs = re.findall(r"pip install[^\n]*", dockerfile)
    assert image_installs and all("-c constraints.txt" in line for line in image_installs)
