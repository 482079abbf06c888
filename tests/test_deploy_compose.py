"""docker-compose.yml describes a stack that starts, in order, and stays inspectable.

Docker is not on CI, so these checks read the file: every long-running service reports its
health and starts once what it needs is healthy, images are pinned, the worker keeps its
state on a writable volume and listens where its healthcheck and Prometheus can reach it,
and every file mounted into a container exists.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.deploy_support import ROOT

COMPOSE = ROOT / "docker-compose.yml"
#: Run-to-completion tools (`docker compose run --rm pos-sim`): no health to report.
ONE_SHOT = {"pos-sim"}
#: Dependencies deliberately only "started": Prometheus must watch a worker that is not
#: ready (that is what TillbridgeNotReady is for), so it must not wait for it to be healthy.
STARTED_IS_ENOUGH = {("prometheus", "worker")}
EXPECTED = {"kafka", "schema-registry", "netsuite-sim", "worker", "prometheus", "grafana"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_the_stack_has_every_service(compose: dict[str, Any]) -> None:
    assert set(_services(compose)) >= EXPECTED


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    missing = [name for name, svc in _services(compose).items()
               if name not in ONE_SHOT and not (svc.get("healthcheck") or {}).get("test")]
    assert not missing, f"no healthcheck: {missing}"
    for name, svc in _services(compose).items():
        check = svc.get("healthcheck") or {}
        assert not check.get("disable"), name
        if check:
            assert check["test"][0] in ("CMD", "CMD-SHELL"), name
            assert {"interval", "timeout", "retries"} <= set(check), name


def test_dependencies_wait_for_health(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for name, svc in services.items():
        depends = svc.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for dep, spec in depends.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            wanted = ("service_started" if (name, dep) in STARTED_IS_ENOUGH
                      else "service_healthy")
            assert spec.get("condition") == wanted, f"{name} -> {dep}: {spec}"
            if wanted == "service_healthy":
                assert services[dep].get("healthcheck"), f"{dep} has no health to wait for"
    worker = services["worker"]["depends_on"]
    assert {"kafka", "schema-registry", "netsuite-sim"} <= set(worker)
    assert services["grafana"]["depends_on"] == {"prometheus": {"condition": "service_healthy"}}


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, svc in _services(compose).items():
        if "image" in svc:
            image = svc["image"]
            tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
            assert "@sha256:" in image or re.search(r"\d+\.\d+", tag), (
                f"{name}: {image!r} is not pinned to a release")
            assert tag != "latest", name
        else:
            assert svc["build"]["dockerfile"] == "deploy/Dockerfile", name
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"(?m)^ARG PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+$", dockerfile)


def test_the_worker_is_reachable_and_healthy_means_ready(compose: dict[str, Any]) -> None:
    worker = _services(compose)["worker"]
    env = _env(worker)
    # The default 127.0.0.1 would answer only inside the container: Prometheus could not
    # scrape it (the healthcheck would, which hides the mistake).
    assert env["TILLBRIDGE_WEB_HOST"] == "0.0.0.0"
    port = env.get("TILLBRIDGE_WEB_PORT", "6066")
    probe = " ".join(worker["healthcheck"]["test"])
    assert f":{port}/ready" in probe
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = [t for job in prometheus["scrape_configs"]
               for sc in job.get("static_configs", []) for t in sc["targets"]]
    assert f"worker:{port}" in targets
    assert any(job["job_name"] == "tillbridge" for job in prometheus["scrape_configs"]), (
        "the worker-down alerts select job=\"tillbridge\"")


def test_the_worker_state_dir_is_a_writable_named_volume(compose: dict[str, Any]) -> None:
    worker = _services(compose)["worker"]
    data_dir = _env(worker)["TILLBRIDGE_DATA_DIR"]
    mounts = {}
    for volume in worker.get("volumes", []):
        source, target, *mode = volume.split(":")
        mounts[target] = (source, mode)
    assert data_dir in mounts, f"{data_dir} is not mounted"
    source, mode = mounts[data_dir]
    assert source in (compose.get("volumes") or {}), f"{source} is not a named volume"
    assert "ro" not in mode
    # A new named volume copies the image directory's owner: it must be the worker's user.
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(rf"install -d -o tillbridge -g tillbridge -m \d+ {data_dir}", dockerfile)
    assert re.search(r"(?m)^USER tillbridge$", dockerfile)


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    for name, svc in _services(compose).items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_grafana_is_provisioned_with_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = _services(compose)["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert mounts.get("./deploy/grafana/provisioning") == "/etc/grafana/provisioning"
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/tillbridge.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert mounts.get("./deploy/grafana/dashboards") == path
    datasource = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    url = datasource["datasources"][0]["url"]
    assert re.fullmatch(r"http://prometheus:\d+", url)
    assert f":{url.rsplit(':', 1)[1]}" in " ".join(
        _services(compose)["prometheus"]["healthcheck"]["test"])


def test_prometheus_loads_the_alert_rules(compose: dict[str, Any]) -> None:
    prometheus = _services(compose)["prometheus"]
    mounts = dict(v.split(":")[:2] for v in prometheus["volumes"])
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    assert all(rule in mounts.values() for rule in config["rule_files"])
    assert mounts["./deploy/alerts.yml"] in config["rule_files"]
