"""The packages' import rules (docs/architecture.md, "Packages and what each may import").

Core owns its ports and knows no framework, store or queue; stores implement core's
ports and know nothing of the web tier; adapters plug core into one technology; the
assembly (``assembly.py``) names stores, runners and job modules but no framework.
Every import statement counts, lazy ones inside functions and ``TYPE_CHECKING`` ones too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import flask_realtime

PACKAGE = Path(flask_realtime.__file__).parent
FRAMEWORK = ("flask", "flask_socketio", "socketio", "engineio", "werkzeug",
             "flask_realtime.web", "flask_realtime.cli")
WEB_TIER = (*FRAMEWORK, "flask_realtime.webex")

#: package -> the modules (and their submodules) it must not import.
FORBIDDEN = {
    "core": (*WEB_TIER, "redis", "rq", "flask_realtime.store", "flask_realtime.adapters"),
    "store": (*WEB_TIER, "rq", "flask_realtime.adapters"),
    "adapters": WEB_TIER,
    # The notifier runs in web processes and workers alike (docs/notifications.md).
    "notify": (*WEB_TIER, "redis", "rq", "flask_realtime.store", "flask_realtime.adapters"),
    # It imports the Webex job module (webex/jobs.py) so the built-in jobs exist.
    "assembly.py": FRAMEWORK,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports made absolute."""
    name = module_name(path)
    return imports_of(path.read_text(),
                      name if path.name == "__init__.py" else name.rpartition(".")[0])


def imports_of(source: str, package: str) -> set[str]:
    """Every module ``source`` imports when it is a module of ``package``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[:len(base) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            # ``from . import web`` imports the module ``web``, not a name of ``.``
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def is_under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(package: str) -> list[str]:
    return sorted(
        f"{module_name(path)} imports {module}"
        for path in ([PACKAGE / package] if package.endswith(".py")
                     else (PACKAGE / package).rglob("*.py"))
        for module in imported(path) if is_under(module, FORBIDDEN[package]))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_only_what_its_layer_may(package: str) -> None:
    assert violations(package) == []


def test_the_rules_see_relative_and_lazy_imports() -> None:
    """The checker itself: a relative import three levels up, inside a function, counts."""
    found = imports_of("def f():\n    from ...store import redis\n",
                       "flask_realtime.core.capture")
    assert sorted(m for m in found if is_under(m, FORBIDDEN["core"])) == [
        "flask_realtime.store", "flask_realtime.store.redis"]
    assert not is_under("flask_realtime.storehouse", ("flask_realtime.store",))


def test_importing_all_of_core_loads_no_framework_store_or_queue() -> None:
    """What core pulls in through third-party modules counts too: import every core
    module in a fresh interpreter and look at what got loaded."""
    modules = sorted(module_name(p) for p in (PACKAGE / "core").rglob("*.py"))
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            "print('\\n'.join(sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60).stdout.split()
    assert [m for m in loaded if is_under(m, FORBIDDEN["core"])] == []
