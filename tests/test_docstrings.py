"""Every public name of core/, store/, web/ and adapters/ states its contract, and
nothing in src/ or tests/ cites a file that is not in this repository.

Public: a module-level class or function whose name does not start with ``_``, and the
methods of such a class whose names do not start with ``_``. Exempt:

* dunder methods (``__init__`` and the like: the class's docstring says what it takes);
* ``@overload`` stubs (the implementation carries the docstring);
* a ``@property`` whose body is a single ``return``: its name and type say it all;
* a method of a class built on a port of ``core/ports.py`` (``RunStore`` and its
  parts) when a port of ``core/ports.py`` or ``web/ports.py`` documents a method of
  that name: the store implements that contract, which is written once, in the port.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import flask_realtime

PACKAGE = Path(flask_realtime.__file__).parent
CHECKED = ("core", "store", "web", "adapters")
PORTS = (PACKAGE / "core" / "ports.py", PACKAGE / "web" / "ports.py")
TESTS = Path(__file__).parent

#: Files that belong to the environment a session once ran in, not to this repository.
OUTSIDE_FILES = re.compile(
    r"(?<!docs/)(measured|reliability)\.md|reliability (item )?\d|\.\./shared|/work/shared",
    re.IGNORECASE)

Function = ast.FunctionDef | ast.AsyncFunctionDef


def decorators(node: Function) -> set[str]:
    return {ast.unparse(d).rpartition(".")[2] for d in node.decorator_list}


def classes(path: Path) -> Iterator[ast.ClassDef]:
    return (n for n in ast.parse(path.read_text()).body if isinstance(n, ast.ClassDef))


def port_contracts() -> tuple[set[str], set[str]]:
    """The classes of ``core/ports.py``, and every method name a port documents."""
    core_ports = {c.name for c in classes(PORTS[0])}
    documented = {m.name for path in PORTS for c in classes(path) for m in c.body
                  if isinstance(m, Function) and ast.get_docstring(m)}
    return core_ports, documented


def exempt(method: Function, cls: ast.ClassDef) -> bool:
    if method.name.startswith("__") or "overload" in decorators(method):
        return True
    if "property" in decorators(method) and len(method.body) == 1 \
            and isinstance(method.body[0], ast.Return):
        return True
    core_ports, documented = port_contracts()
    bases = {ast.unparse(b).rpartition(".")[2] for b in cls.bases}
    return bool(bases & core_ports) and method.name in documented


def undocumented(path: Path) -> Iterator[str]:
    where = path.relative_to(PACKAGE.parent)
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, (ast.ClassDef, *Function.__args__)) \
                or node.name.startswith("_"):
            continue
        if ast.get_docstring(node) is None:
            yield f"{where}:{node.lineno} {node.name}"
        if isinstance(node, ast.ClassDef):
            for method in node.body:
                if isinstance(method, Function) and not method.name.startswith("_") \
                        and ast.get_docstring(method) is None and not exempt(method, node):
                    yield f"{where}:{method.lineno} {node.name}.{method.name}"


def test_every_public_class_and_function_has_a_docstring() -> None:
    missing = [entry for package in CHECKED
               for path in sorted((PACKAGE / package).rglob("*.py"))
               for entry in undocumented(path)]
    assert missing == []


def test_the_checker_sees_a_missing_method_docstring_and_its_exemptions() -> None:
    source = ("class A:\n    '''Doc.'''\n    def f(self): pass\n"
              "    @property\n    def p(self): return 1\n    def __eq__(self, o): pass\n")
    cls = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef))
    methods = [m for m in cls.body if isinstance(m, Function)]
    assert [m.name for m in methods if not exempt(m, cls)] == ["f"]


def test_nothing_cites_a_file_outside_the_repository() -> None:
    this = Path(__file__).resolve()
    cited = [f"{path}:{number}"
             for root in (PACKAGE, TESTS)
             for path in sorted(root.rglob("*.py")) if path.resolve() != this
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if OUTSIDE_FILES.search(line)]
    assert cited == []
