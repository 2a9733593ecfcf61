"""Every package the app imports is one that pyproject.toml declares.

The README's first command (``scripts/bootstrap``) installs the package without the
test extras, while the tests run with them: a dependency that only a test tool brings
in (``requests`` came with webexpythonsdk and schemathesis) passes every test and
breaks a fresh install at the first import. This reads the imports of src/ instead.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "flask_realtime"


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extra: str | None = None) -> set[str]:
    """Distribution names of the base dependencies (or of one extra)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return {normalized(re.split(r"[\s<>=!~\[;]", spec, maxsplit=1)[0]) for spec in specs}


def imported_at_top_level() -> dict[str, str]:
    """Top-level package -> a module importing it, for imports that run at import time
    (those inside functions run only when that code does, and are checked with it)."""
    found: dict[str, str] = {}
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_package_the_app_imports_is_a_declared_dependency() -> None:
    distributions = importlib.metadata.packages_distributions()
    base = declared()
    missing = {}
    for package, where in imported_at_top_level().items():
        if package in sys.stdlib_module_names or package in ("__future__", "flask_realtime"):
            continue
        owners = {normalized(d) for d in distributions.get(package, [])}
        assert owners, f"{package} (imported by {where}) is not installed at all"
        if not owners & base:
            missing[package] = where
    assert not missing, (
        f"imported but not in pyproject.toml's dependencies: {missing}; a fresh "
        "`scripts/bootstrap` would not install them")


#: Imported inside the functions that use them, so that an idle server does not load
#: them (tests/web/test_idle_imports.py), which the check above does not read: package ->
#: its distribution. A fresh install still needs each.
IMPORTED_LATER = {
    "authlib": "authlib",  # web/auth.py, at the first login
    "requests": "requests",  # web/auth.py: Authlib's Flask client runs on requests
    "cryptography": "cryptography",  # ciphers.py, web/tokens.py: at the first encryption
    "httpx_aiohttp": "httpx-aiohttp",  # webex/client.py: at a Webex client's first pool
}


def test_what_is_imported_later_is_a_declared_dependency_too() -> None:
    distributions = importlib.metadata.packages_distributions()
    base = declared()
    for package, distribution in IMPORTED_LATER.items():
        assert normalized(distribution) in {normalized(d) for d in distributions[package]}
        assert normalized(distribution) in base, f"{package} is not in the dependencies"


def test_the_check_sees_the_imports_that_matter() -> None:
    imports = imported_at_top_level()
    assert {"flask", "flask_socketio", "redis", "rq", "httpx"} <= set(imports)
    # Not imported at start any more: each is in IMPORTED_LATER instead.
    assert not set(IMPORTED_LATER) & set(imports)
    assert "gunicorn" in declared("prod")
