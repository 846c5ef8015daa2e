"""The shape of the code: dependencies point one way, and importing a module starts nothing."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("scheduler", "fetcher", "publisher", "watchdog", "notifier", "api")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("shared"), ids=lambda p: str(p.relative_to(ROOT)))
def test_shared_imports_nothing_built_on_it(path: Path) -> None:
    bad = {m for m in _imports(path) if m.split(".")[0] in {"services", "steamwatch", "simulator"}}
    assert bad == set()


# The allowed direction between shared/'s packages: each may import only those listed (and
# nothing may import a package that imports it back). observability and db are the floor;
# tasks and bus sit on top. README's "Layout" section says the same in words.
ALLOWED: dict[str, set[str]] = {
    "observability": set(),
    "db": set(),
    "steam": {"observability"},
    "config": {"observability", "steam"},  # settings validate the proxy pool's budgets
    "runtime": {"config", "db", "observability"},
    "alerts": {"db", "steam"},
    "tasks": {"alerts", "config", "db", "steam"},
    "bus": {"config", "db", "observability", "runtime", "steam"},  # results ride in messages
    "notify": {"alerts", "db", "observability", "steam"},  # subscriptions and their messages
    "access": {"db"},  # the API's tokens
    "history": {"db"},  # roll-ups, retention and the history queries
}


def _package_imports(package: str) -> dict[str, set[str]]:
    """Each module of ``shared/<package>`` -> the other shared packages it imports."""
    found = {}
    for path in _modules(f"shared/{package}"):
        others = set()
        for module in _imports(path):
            parts = module.split(".")
            if parts[0] == "shared" and len(parts) > 1 and parts[1] != package:
                others.add(parts[1])
        found[str(path.relative_to(ROOT))] = others
    return found


def test_every_shared_package_is_placed_in_the_layers() -> None:
    packages = {p.name for p in (ROOT / "shared").iterdir() if (p / "__init__.py").exists()}
    assert packages == set(ALLOWED)
    loose = [p.name for p in (ROOT / "shared").glob("*.py") if p.name != "__init__.py"]
    assert loose == []  # every module lives in its concept's package


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_shared_packages_import_only_below_them(package: str) -> None:
    bad = {
        path: others - ALLOWED[package]
        for path, others in _package_imports(package).items()
        if others - ALLOWED[package]
    }
    assert bad == {}


def test_the_allowed_direction_has_no_cycle() -> None:
    seen: list[str] = []

    def below(package: str, path: tuple[str, ...]) -> None:
        assert package not in path, f"cycle: {' -> '.join((*path, package))}"
        for lower in ALLOWED[package]:
            below(lower, (*path, package))
        seen.append(package)

    for package in ALLOWED:
        below(package, ())
    assert set(seen) == set(ALLOWED)


def _reads_environment(path: Path) -> list[int]:
    """Lines of ``path`` that read the process environment (os.environ, os.getenv, environ)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb"}:
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            if {a.name for a in node.names} & {"environ", "getenv", "environb"}:
                lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("path", _modules("shared"), ids=lambda p: str(p.relative_to(ROOT)))
def test_shared_reads_no_environment_variable(path: Path) -> None:
    """Settings come from each service's composition root (services/<svc>/main.py), passed down."""
    assert _reads_environment(path) == []


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_one_composition_root(service: str) -> None:
    """services/<svc>/main.py reads the settings; no other module of the service does."""
    readers = {
        str(path.relative_to(ROOT))
        for path in _modules(f"services/{service}")
        if "load_settings" in path.read_text() or _reads_environment(path)
    }
    assert readers == {f"services/{service}/main.py"}


@pytest.mark.parametrize("service", SERVICES)
def test_services_do_not_import_each_other(service: str) -> None:
    others = {f"services.{s}" for s in SERVICES if s != service}
    for path in _modules(f"services/{service}"):
        bad = {m for m in _imports(path) if any(m == o or m.startswith(o + ".") for o in others)}
        assert bad == set(), f"{path.relative_to(ROOT)} imports {bad}"


def test_importing_every_module_starts_nothing() -> None:
    """No thread, child process or open socket appears from imports alone."""
    modules = [
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for package in ("shared", "services", "steamwatch", "simulator")
        for p in _modules(package)
        if "migrations" not in p.parts and p.name != "__main__.py"
    ]
    probe = f"""
import importlib, json, os, threading
for name in {modules!r}:
    importlib.import_module(name)
fds = []
for fd in os.listdir("/proc/self/fd"):
    try:
        fds.append(os.readlink(f"/proc/self/fd/{{fd}}"))
    except FileNotFoundError:  # the fd listdir itself used
        pass
print(json.dumps({{
    "threads": threading.active_count(),
    "sockets": [fd for fd in fds if fd.startswith("socket:")],
    "children": os.listdir(f"/proc/{{os.getpid()}}/task"),
}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["threads"] == 1
    assert seen["sockets"] == []
    assert len(seen["children"]) == 1  # one OS thread: the main one


@pytest.mark.parametrize("service", ["fetcher"])
def test_the_health_fork_imports_nothing_of_its_service(service: str) -> None:
    """The fork serving a dramatiq service's health is one of its processes: its memory counts.

    It must not pull in the rest of the service, SQLAlchemy, dramatiq or APScheduler.
    """
    probe = f"import json, sys, services.{service}.main; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    modules = set(json.loads(out.stdout))
    top = {m.split(".")[0] for m in modules}
    assert {"asyncpg", "aiohttp", "prometheus_client"} <= top  # what it serves with
    assert top & {"sqlalchemy", "dramatiq", "apscheduler"} == set()
    own = {m for m in modules if m.startswith("services.")}
    assert own == {f"services.{service}", f"services.{service}.main"}  # its package, empty
