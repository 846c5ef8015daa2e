"""`steamwatch env`: the stores of a running `make run` as `export` lines, from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from steamwatch.discovery import write_stores

SERVICES = {"scheduler": "http://127.0.0.1:40001", "fetcher": "http://127.0.0.1:40002"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEAMWATCH_")}
    return {**env, **extra}


def _steamwatch(
    *args: str, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steamwatch", *args],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_the_exports_of_a_running_make_run_work_with_eval_from_another_folder(
    tmp_path: Path,
) -> None:
    home = tmp_path / "project" / ".steamwatch"
    write_stores(
        home,
        database_url="postgresql+asyncpg://postgres@127.0.0.1:5999/steamwatch",
        redis_url="redis://127.0.0.1:6999/0",
        services=SERVICES,
    )
    done = _steamwatch("env", STEAMWATCH_HOME=str(home))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"export STEAMWATCH_HOME={home}",
        "export STEAMWATCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5999/steamwatch",
        "export STEAMWATCH_REDIS_URL=redis://127.0.0.1:6999/0",
        "# scheduler: http://127.0.0.1:40001/metrics http://127.0.0.1:40001/healthz "
        "http://127.0.0.1:40001/readyz",
        "# fetcher: http://127.0.0.1:40002/metrics http://127.0.0.1:40002/healthz "
        "http://127.0.0.1:40002/readyz",
    ]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = 'eval "$(STEAMWATCH_HOME="$1" "$2" -m steamwatch env)" && echo "$STEAMWATCH_REDIS_URL"'
    shell = subprocess.run(
        ["bash", "-c", script, "sh", str(home), sys.executable],
        env=_env(),
        capture_output=True,
        text=True,
        cwd=elsewhere,
        timeout=60,
    )
    assert shell.stdout.strip() == "redis://127.0.0.1:6999/0", shell.stderr


def test_a_password_is_masked_and_left_out_of_the_exports_unless_asked(tmp_path: Path) -> None:
    write_stores(
        tmp_path,
        database_url="postgresql+asyncpg://app:s3cr3t-pw@db.internal:5432/steamwatch",
        redis_url="redis://127.0.0.1:6999/0",
    )
    done = _steamwatch("env", STEAMWATCH_HOME=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "s3cr3t-pw" not in done.stdout + done.stderr
    assert "# STEAMWATCH_DATABASE_URL=postgresql+asyncpg://app:***@db.internal:5432/steamwatch" in (
        done.stdout
    )
    assert "export STEAMWATCH_DATABASE_URL" not in done.stdout
    shown = _steamwatch("env", "--show-secrets", STEAMWATCH_HOME=str(tmp_path))
    assert (
        "export STEAMWATCH_DATABASE_URL="
        "postgresql+asyncpg://app:s3cr3t-pw@db.internal:5432/steamwatch" in shown.stdout
    )


def test_without_a_running_make_run_it_says_where_it_looked_and_how_to_point_it(
    tmp_path: Path,
) -> None:
    done = _steamwatch("env", STEAMWATCH_HOME=str(tmp_path / "nothing"))
    assert done.returncode == 1
    assert done.stdout == ""
    assert str(tmp_path / "nothing") in done.stderr
    assert "STEAMWATCH_HOME" in done.stderr


def test_a_command_that_finds_no_stores_names_the_folder_and_steamwatch_home(
    tmp_path: Path,
) -> None:
    done = _steamwatch("tail", "--count", "1", STEAMWATCH_HOME=str(tmp_path / "nothing"))
    assert done.returncode == 2
    assert str(tmp_path / "nothing") in done.stderr
    assert "STEAMWATCH_HOME" in done.stderr
    assert "steamwatch env" in done.stderr
