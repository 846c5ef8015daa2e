"""The shape of the code: dependencies point one way, and importing a module starts nothing."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("scheduler", "fetcher", "publisher", "watchdog")


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


@pytest.mark.parametrize("service", ["fetcher", "publisher"])
def test_the_health_fork_imports_nothing_of_its_service(service: str) -> None:
    """The fork serving a dramatiq service's health is one of its processes: its memory counts.

    It must not pull in the rest of the service, SQLAlchemy, dramatiq or APScheduler.
    """
    probe = f"import json, sys, services.{service}.health; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    modules = set(json.loads(out.stdout))
    top = {m.split(".")[0] for m in modules}
    assert {"asyncpg", "aiohttp", "prometheus_client"} <= top  # what it serves with
    assert top & {"sqlalchemy", "dramatiq", "apscheduler"} == set()
    own = {m for m in modules if m.startswith("services.")}
    assert own == {f"services.{service}", f"services.{service}.health"}  # its package, empty
