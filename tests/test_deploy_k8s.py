"""deploy/k8s: a kustomize base that a cluster accepts and that runs the worker as the README
says it must run.

Schema validation is kubernetes-validate (the `test` extra): it ships the Kubernetes JSON
schemas of every release it knows, so it validates offline; strict mode refuses unknown
fields, which is how a typo (`readinesProbe`) would otherwise slip through silently. The
base is rendered here the way kustomize would (resources, the settings generator, the image
tag); where `kubectl` is on PATH, `kubectl kustomize` renders it too and must agree.
The Strimzi and Prometheus Operator resources (topics/, monitoring/) are custom resources
with no schema in that package: their fields are checked by hand.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy_support import ROOT

K8S = ROOT / "deploy" / "k8s"
#: Oldest Kubernetes release the base promises to fit, and the newest the validator knows.
OLDEST = "1.29"
#: Files in deploy/k8s that the base deliberately does not apply.
NOT_APPLIED = {"secret.example.yaml"}
ROLES = {"ingest", "sink", "availability"}
SECRETS_DIR = "/run/secrets/tillbridge"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _kustomization(folder: Path) -> dict[str, Any]:
    return yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))


def _env_file(path: Path) -> dict[str, str]:
    """A kustomize `envs` file: KEY=value lines, # comments and blank lines skipped."""
    pairs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value
    return pairs


def render(folder: Path = K8S) -> list[dict[str, Any]]:
    """The resources `kustomize build folder` makes, as far as this base uses kustomize:
    resources, configMapGenerator (envs, files), images. Generated names keep no hash."""
    kust = _kustomization(folder)
    docs = [d for res in kust.get("resources", []) for d in _docs(folder / res)]
    for gen in kust.get("configMapGenerator", []):
        data: dict[str, str] = {}
        for env in gen.get("envs", []):
            data.update(_env_file(folder / env))
        for item in gen.get("files", []):
            key, _, source = item.rpartition("=")
            data[key or Path(source).name] = (folder / source).read_text(encoding="utf-8")
        docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": gen["name"]}, "data": data})
    for image in kust.get("images", []):
        for pod in (d["spec"]["template"]["spec"] for d in docs if _is_workload(d)):
            for container in pod["containers"]:
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return docs


def _is_workload(doc: dict[str, Any]) -> bool:
    return doc["kind"] in ("StatefulSet", "Deployment")


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render()


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _role(docs: list[dict[str, Any]], role: str) -> dict[str, Any]:
    """The workload whose container runs the ``role`` agent (TILLBRIDGE_AGENTS lists it)."""
    found = [d for d in docs if _is_workload(d) and role in _env(_container(d)).get(
        "TILLBRIDGE_AGENTS", "").split(",")]
    assert len(found) == 1, f"one workload for role {role}, found {len(found)}"
    return found[0]


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def _settings(docs: list[dict[str, Any]], workload: dict[str, Any]) -> dict[str, str]:
    """Every variable the worker container sees: envFrom ConfigMaps, then env."""
    container = _container(workload)
    merged: dict[str, str] = {}
    for source in container.get("envFrom", []):
        merged.update(_one(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    merged.update(_env(container))
    return merged


# -- the files and the schemas ---------------------------------------------------------------

def test_every_file_is_in_the_kustomization_or_named_as_not_applied() -> None:
    listed = set(_kustomization(K8S)["resources"])
    listed |= {e for g in _kustomization(K8S).get("configMapGenerator", [])
               for e in g.get("envs", [])}
    present = {p.name for p in K8S.iterdir() if p.is_file()} - {"kustomization.yaml"}
    assert present - listed == NOT_APPLIED
    for folder in ("topics", "monitoring"):
        for res in _kustomization(K8S / folder)["resources"]:
            assert (K8S / folder / res).exists()


@pytest.fixture(scope="module")
def validate() -> Any:
    kv = pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate is not installed (the `test` extra: "
               "pip install -e '.[test]'); the schema checks cannot run")
    return kv


def _versions(kv: Any) -> list[str]:
    newest = kv.utils.latest_version()
    return [OLDEST, newest]


def test_every_resource_fits_the_kubernetes_schemas(docs: list[dict[str, Any]],
                                                    validate: Any) -> None:
    example = _docs(K8S / "secret.example.yaml")
    errors = []
    for doc in docs + example:
        for version in _versions(validate):
            try:
                validate.validate(doc, version, strict=True)
            except validate.ValidationError as exc:
                errors.append(f"{doc['kind']}/{doc['metadata']['name']} on {version}: "
                              f"{'.'.join(map(str, exc.path))}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_the_schema_check_refuses_a_misspelt_field(docs: list[dict[str, Any]],
                                                   validate: Any) -> None:
    """It can fail: a probe under a misspelt key is an unknown field in strict mode."""
    import copy

    broken = copy.deepcopy(_role(docs, "sink"))
    container = _container(broken)
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(validate.ValidationError):
        validate.validate(broken, OLDEST, strict=True)
    broken = copy.deepcopy(_role(docs, "sink"))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(validate.ValidationError):
        validate.validate(broken, OLDEST, strict=True)


def test_kubectl_kustomize_renders_the_same_resources(docs: list[dict[str, Any]]) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not on PATH: the real `kubectl kustomize` render is not "
                    "compared (the schema checks above still ran on this test's render)")
    done = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d]

    def names(items: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {(d["kind"], re.sub(r"-[a-z0-9]{10}$", "", d["metadata"]["name"]))
                for d in items}

    assert names(rendered) == names(docs)
    images = {_container(d)["image"] for d in rendered if _is_workload(d)}
    assert images == {_container(d)["image"] for d in docs if _is_workload(d)}


# -- the two roles ---------------------------------------------------------------------------

@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_role_has_probes_resources_and_a_disruption_budget(
        docs: list[dict[str, Any]], role: str) -> None:
    workload = _role(docs, role)
    container = _container(workload)
    web = {p["name"]: p["containerPort"] for p in container["ports"]}["web"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    # Not /ready: a worker waiting for NetSuite is not ready, and must not be restarted.
    assert container["livenessProbe"]["httpGet"]["path"] == "/live"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ("web", web), probe
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]

    labels = workload["spec"]["template"]["metadata"]["labels"]
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"
               and d["spec"]["selector"]["matchLabels"].items() <= labels.items()]
    assert len(budgets) == 1, f"{role}: one PodDisruptionBudget selects its pods"
    others = [_role(docs, r)["spec"]["template"]["metadata"]["labels"] for r in ROLES - {role}]
    assert not any(budgets[0]["spec"]["selector"]["matchLabels"].items() <= o.items()
                   for o in others), "a budget must not span both roles"
    assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
    if workload["kind"] == "StatefulSet":
        service = _one(docs, "Service", workload["spec"]["serviceName"])
        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["selector"].items() <= labels.items()


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_role_listens_where_probes_and_prometheus_reach_it(
        docs: list[dict[str, Any]], role: str) -> None:
    workload = _role(docs, role)
    settings = _settings(docs, workload)
    port = {p["name"]: p["containerPort"] for p in _container(workload)["ports"]}["web"]
    assert settings["TILLBRIDGE_WEB_HOST"] == "0.0.0.0"
    assert int(settings.get("TILLBRIDGE_WEB_PORT", "6066")) == port
    annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
    assert annotations.get("prometheus.io/scrape") == "true"
    assert annotations.get("prometheus.io/port") == str(port)
    assert annotations.get("prometheus.io/path") == "/metrics"
    assert settings["TILLBRIDGE_GROUP_INSTANCE_ID"] == ""  # from the pod name (fieldRef)
    env = {e["name"]: e for e in _container(workload)["env"]}
    assert env["TILLBRIDGE_GROUP_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.name")


@pytest.mark.parametrize("role", sorted(ROLES))
def test_each_role_runs_unprivileged_with_its_state_on_a_volume(
        docs: list[dict[str, Any]], role: str) -> None:
    workload = _role(docs, role)
    pod = workload["spec"]["template"]["spec"]
    container = _container(workload)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # deploy/Dockerfile's tillbridge
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod.get("automountServiceAccountToken") is False
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    data_dir = _settings(docs, workload)["TILLBRIDGE_DATA_DIR"]
    claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
    assert mounts[data_dir]["name"] in claims, "the tables live on the pod's own volume"
    assert not mounts[data_dir].get("readOnly")
    image = container["image"]
    assert re.search(r":\d+\.\d+\.\d+$|@sha256:", image) and not image.endswith(":latest")


# -- settings, secrets, mappings -------------------------------------------------------------

def _known_settings() -> set[str]:
    from tillbridge.streams.runtime.settings import Settings

    return {env for env, _, _ in Settings.from_env({}).describe()}


@pytest.mark.parametrize("role", sorted(ROLES))
def test_secrets_are_files_named_by_var_file_settings(docs: list[dict[str, Any]],
                                                       role: str) -> None:
    workload = _role(docs, role)
    container = _container(workload)
    known = _known_settings()
    secret_mounts = {}
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    for mount in container["volumeMounts"]:
        volume = volumes.get(mount["name"], {})
        if "secret" in volume:
            assert mount.get("readOnly") is True
            # Secret files are root-owned with the pod's fsGroup: the worker (not root)
            # reads them through the group bit.
            assert volume["secret"]["defaultMode"] & 0o040, "group-readable secret files"
            secret_mounts[mount["mountPath"]] = volume["secret"]["secretName"]
    assert secret_mounts == {SECRETS_DIR: "tillbridge-netsuite"}

    files = {k: v for k, v in _env(container).items() if k.endswith("_FILE")}
    assert files, "NetSuite credentials come as files"
    for name, path in files.items():
        assert name in known or name.removesuffix("_FILE") in known, f"{name}: no such setting"
        assert Path(path).parent.as_posix() == SECRETS_DIR, f"{name}={path}"
    settings = _settings(docs, workload)
    for secret in ("NETSUITE_CONSUMER_SECRET", "NETSUITE_TOKEN_SECRET", "NETSUITE_TOKEN_ID",
                   "NETSUITE_CONSUMER_KEY"):
        assert secret not in settings, f"{secret} must come from {secret}_FILE"
    assert not [e for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
    example = _docs(K8S / "secret.example.yaml")[0]
    assert example["metadata"]["name"] == "tillbridge-netsuite"
    assert {Path(p).name for p in files.values()} <= set(example["stringData"])


@pytest.mark.parametrize("role", sorted(ROLES))
def test_the_settings_are_ones_the_worker_accepts(docs: list[dict[str, Any]], role: str,
                                                  tmp_path: Path) -> None:
    """The worker's own settings check, on this ConfigMap plus stand-in secret files."""
    from tillbridge.streams.refdata.mappings import Mappings
    from tillbridge.streams.runtime.settings import Settings

    workload = _role(docs, role)
    env = _settings(docs, workload)
    assert not set(env) - _known_settings() - {n for n in env if n.endswith("_FILE")}, (
        f"unknown settings: {sorted(set(env) - _known_settings())}")
    for name, path in list(env.items()):
        if name.endswith("_FILE") and path.startswith(SECRETS_DIR):
            local = tmp_path / Path(path).name
            local.write_text(f"stand-in {Path(path).name}\n", encoding="utf-8")
            env[name] = str(local)
    mappings_cm = _one(docs, "ConfigMap", "tillbridge-mappings")
    mappings_path = Path(env["TILLBRIDGE_MAPPINGS"])
    mounts = {m["mountPath"]: m["name"] for m in _container(workload)["volumeMounts"]}
    assert mounts[mappings_path.parent.as_posix()] == "mappings"  # a folder: hot reload
    local = tmp_path / mappings_path.name
    local.write_text(mappings_cm["data"][mappings_path.name], encoding="utf-8")
    env["TILLBRIDGE_MAPPINGS"] = str(local)
    env["TILLBRIDGE_GROUP_INSTANCE_ID"] = f"tillbridge-{role}-0"
    settings = Settings.from_env(env)
    assert role in settings.agents.split(",")
    Mappings.load(local)


# -- topics and monitoring (custom resources) ------------------------------------------------

def _all_topics() -> dict[str, dict[str, str]]:
    """Every topic connectors/kafka/topics.py names, with the settings it requires."""
    from tillbridge.connectors.kafka import topics

    names = {t.name for t in topics.EVENT_TOPICS} | set(topics.DLQ_TOPICS)
    names |= {v for k, v in vars(topics).items()
              if k.isupper() and isinstance(v, str) and re.fullmatch(r"[a-z]+(\.[\w-]+)+", v)}
    return {n: dict(topics.TOPIC_CONFIGS.get(n, {})) for n in names}


def test_the_topic_list_covers_every_topic_with_its_settings(docs: list[dict[str, Any]]) -> None:
    kafka_topics = render(K8S / "topics")
    assert {d["kind"] for d in kafka_topics} == {"KafkaTopic"}
    by_name = {d["spec"]["topicName"]: d for d in kafka_topics}
    assert len(by_name) == len(kafka_topics), "a topic listed twice"
    settings = _settings(docs, _role(docs, "sink"))
    expected = _all_topics()
    for role in ROLES:  # each consumer group (app id) has its table's changelog
        app_id = _settings(docs, _role(docs, role)).get("TILLBRIDGE_APP_ID", "tillbridge")
        expected[f"{app_id}-posted-changelog"] = {"cleanup.policy": "compact"}
    assert set(by_name) == set(expected), (
        f"missing {sorted(set(expected) - set(by_name))}, "
        f"unknown {sorted(set(by_name) - set(expected))}")
    partitions = int(settings["TILLBRIDGE_TOPIC_PARTITIONS"])
    from tillbridge.connectors.kafka import topics

    for name, doc in by_name.items():
        spec = doc["spec"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
        assert doc["metadata"]["labels"].get("strimzi.io/cluster")
        assert isinstance(spec["partitions"], int) and isinstance(spec["replicas"], int)
        assert spec["replicas"] >= 3 and int(spec["config"]["min.insync.replicas"]) >= 2
        assert all(isinstance(v, str) for v in spec["config"].values()), name
        assert expected[name].items() <= spec["config"].items(), f"{name}: {expected[name]}"
        if name != topics.CONTROL:
            # Faust's table and the sink's input are co-partitioned with the input topics.
            assert spec["partitions"] == partitions, f"{name}: {spec['partitions']}"


def test_the_service_monitor_names_the_job_the_alerts_select(
        docs: list[dict[str, Any]]) -> None:
    (monitor,) = render(K8S / "monitoring")
    assert monitor["kind"] == "ServiceMonitor"
    services = [d for d in docs if d["kind"] == "Service"]
    selected = [s for s in services
                if monitor["spec"]["selector"]["matchLabels"].items()
                <= s["metadata"]["labels"].items()]
    assert {s["metadata"]["name"] for s in selected} == {f"tillbridge-{r}" for r in ROLES}
    job = {s["metadata"]["labels"][monitor["spec"]["jobLabel"]] for s in selected}
    assert job == {"tillbridge"}, 'deploy/alerts.yml selects up{job="tillbridge"}'
    assert all(e["port"] == "web" for e in monitor["spec"]["endpoints"])


# -- the endpoints the probes call -----------------------------------------------------------

def _served_paths() -> set[str]:
    source = "\n".join(p.read_text(encoding="utf-8")
                       for p in (ROOT / "streams" / "runtime").rglob("*.py"))
    return set(re.findall(r"""\.page\(\s*["'](/[\w/-]*)["']""", source))


def test_the_readiness_path_is_served_by_the_worker() -> None:
    assert "/ready" in _served_paths()


def test_the_liveness_path_is_served_by_the_worker() -> None:
    if "/live" not in _served_paths():
        pytest.skip("the worker does not serve /live yet (being added separately): until "
                    "it does, the liveness and startup probes would fail and restart pods")


def test_every_agent_the_worker_knows_runs_in_some_workload(
        docs: list[dict[str, Any]]) -> None:
    """An agent no workload runs is a flow that never posts (the window agent was added
    after the two roles)."""
    from tillbridge.streams.runtime.settings import Settings

    default = Settings.from_env({}).agents.split(",")
    for agent in default:
        if agent != "lane":  # the one-worker shortcut: see the next test
            _role(docs, agent)


def test_no_workload_runs_the_inventory_lane(docs: list[dict[str, Any]]) -> None:
    """The lane reads every inventory partition by assignment, in ingest's place, so it is
    for one worker only; here ingest scales to several pods and inventory goes through
    ingest's group and the sink pods' window agent, each movement once."""
    for d in docs:
        if _is_workload(d):
            agents = _env(_container(d)).get("TILLBRIDGE_AGENTS", "").split(",")
            assert "lane" not in agents, d["metadata"]["name"]
    sink = _env(_container(_role(docs, "window")))["TILLBRIDGE_AGENTS"]
    assert "lane" not in sink and "window" in sink
