"""deploy/ validated offline with the tools the project installs (deploy/setup.sh: Debian haproxy
and prometheus for promtool; pip kubernetes-validate, check-jsonschema, yamllint), plus the
cross-file facts no single validator sees: replica names, settings names, the two HAProxy configs.

Not checked here (no container engine or cluster on these machines): building the image,
`docker compose up`, `kubectl apply`.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from vos_service.config import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
K8S_FILES = sorted(p for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")
REPLICAS = ("vos-0", "vos-1", "vos-2")


def run(*cmd: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, cwd=REPO)


def ok(*cmd: str | Path) -> str:
    out = run(*cmd)
    assert out.returncode == 0, f"{cmd}:\n{out.stdout}\n{out.stderr}"
    return out.stdout + out.stderr


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    assert found, f"{name} is not installed: run deploy/setup.sh"
    return found


def load_all(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def k8s_objects() -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for p in K8S_FILES for d in load_all(p)}


# ---- generic validators -------------------------------------------------------------------

def test_every_yaml_file_passes_yamllint():
    ok(BIN / "yamllint", "--strict", "-c", DEPLOY / ".yamllint.yaml", DEPLOY)


def test_compose_file_matches_the_compose_spec():
    assert "ok -- validation done" in ok(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec",
                                         DEPLOY / "compose.yaml")


def test_kubernetes_manifests_validate_strictly():
    out = ok(BIN / "kubernetes-validate", "--strict", *K8S_FILES)
    assert out.count("passed") == sum(len(load_all(p)) for p in K8S_FILES), out


def test_the_kubernetes_validator_rejects_a_misspelled_field(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text((DEPLOY / "k8s" / "vos.yaml").read_text().replace("terminationGracePeriodSeconds",
                                                                        "terminationGracePeriod"))
    assert run(BIN / "kubernetes-validate", "--strict", broken).returncode != 0


def test_gpu_overlay_patches_the_statefulset_into_a_valid_one(tmp_path):
    kust = yaml.safe_load((DEPLOY / "k8s" / "gpu" / "kustomization.yaml").read_text())
    assert kust["resources"] == [".."]
    patch = yaml.safe_load((DEPLOY / "k8s" / "gpu" / kust["patches"][0]["path"]).read_text())
    base = k8s_objects()[("StatefulSet", "vos")]
    assert (patch["kind"], patch["metadata"]["name"]) == ("StatefulSet", "vos")
    merged = copy.deepcopy(base)  # strategic merge as kubectl does it: containers by name, env by name
    spec, pspec = merged["spec"]["template"]["spec"], patch["spec"]["template"]["spec"]
    spec["tolerations"] = pspec["tolerations"]
    (container,) = [c for c in spec["containers"] if c["name"] == pspec["containers"][0]["name"]]
    pc = pspec["containers"][0]
    container["image"], container["resources"] = pc["image"], pc["resources"]
    container["env"] = [e for e in container["env"] if e["name"] not in {p["name"] for p in pc["env"]}] + pc["env"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    out = tmp_path / "gpu.yaml"
    out.write_text(yaml.safe_dump(merged))
    ok(BIN / "kubernetes-validate", "--strict", out)
    assert Settings(**_settings_from_env({e["name"]: e.get("value", "x") for e in container["env"]})).model.device \
        == "cuda"


def test_haproxy_configs_are_valid():
    k8s_cfg = k8s_objects()[("ConfigMap", "haproxy")]["data"]["haproxy.cfg"]
    for text in ((DEPLOY / "haproxy" / "haproxy.cfg").read_text(), k8s_cfg):
        path = DEPLOY / "haproxy" / ".check.cfg"
        try:
            path.write_text(text)
            assert "Configuration file is valid" in ok(tool("haproxy"), "-c", "-f", path)
        finally:
            path.unlink(missing_ok=True)


def test_the_kubernetes_haproxy_config_is_the_shipped_one_with_pod_names():
    shipped = (DEPLOY / "haproxy" / "haproxy.cfg").read_text().splitlines()
    k8s = k8s_objects()[("ConfigMap", "haproxy")]["data"]["haproxy.cfg"].splitlines()
    servers = lambda lines: [ln for ln in lines if ln.strip().startswith("server ")]  # noqa: E731
    assert [ln for ln in shipped if ln not in servers(shipped)] == [ln for ln in k8s if ln not in servers(k8s)]
    statefulset = k8s_objects()[("StatefulSet", "vos")]
    names = [f"vos-{i}" for i in range(statefulset["spec"]["replicas"])]
    assert servers(k8s) == [f"    server {n} {n}.vos.vos.svc.cluster.local:{port} check id {i + 1}"
                            for port in (50051, 8080) for i, n in enumerate(names)]
    assert servers(shipped) == [f"    server {n} {n}:{port} check id {i + 1}" for port in (50051, 8080)
                                for i, n in enumerate(REPLICAS)]


def test_prometheus_configs_and_rules_are_valid():
    for cfg in ("prometheus.yml", "prometheus-k8s.yml"):
        assert "SUCCESS" in ok(tool("promtool"), "check", "config", DEPLOY / "prometheus" / cfg)


def test_alert_rules_fire_on_a_failing_replica_and_not_on_a_healthy_one():
    assert "SUCCESS" in ok(tool("promtool"), "test", "rules", DEPLOY / "prometheus" / "tests" / "rules_test.yml")


def test_dashboard_queries_parse_and_read_series_that_exist(tmp_path):
    import json

    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "vos.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 6
    rules = tmp_path / "dashboard.yml"  # promtool parses PromQL only inside rule files
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)]}]}))
    ok(tool("promtool"), "check", "rules", rules)
    recorded = {r["record"] for g in yaml.safe_load((DEPLOY / "prometheus" / "rules" / "recording.yml")
                                                    .read_text())["groups"] for r in g["rules"]}
    from vos_service.metrics import Metrics

    exported = {m.name for m in Metrics().registry.collect()}  # counters collect without _total
    for name in (n for e in exprs for n in re.findall(r"[a-z_]*:?vos_[a-z0-9_:]+", e)):
        assert name in recorded or name.removesuffix("_total") in exported, name


# ---- what ties the files together ----------------------------------------------------------

def _settings_from_env(env: dict[str, str]) -> dict:
    """VOS_<SECTION>__<FIELD> variables -> Settings(**...) keyword arguments (config.py's rule)."""
    out: dict[str, dict] = {}
    for k, v in env.items():
        assert k.startswith("VOS_") and "__" in k, k
        section, field = k[4:].lower().split("__", 1)
        out.setdefault(section, {})[field] = v
    return out


def test_every_setting_the_deploy_files_set_exists(tmp_path):
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    envs = [s.get("environment", {}) for s in compose["services"].values() if s.get("image") == "vos-service:latest"]
    container = k8s_objects()[("StatefulSet", "vos")]["spec"]["template"]["spec"]["containers"][0]
    envs.append({e["name"]: e.get("value", "vos-0") for e in container["env"]})
    docker_env = re.search(r"^ENV PATH=\S+ PYTHONUNBUFFERED=1 \\\n\s+(.+)$", (DEPLOY / "Dockerfile").read_text(),
                           re.M).group(1)
    envs.append(dict(kv.split("=", 1) for kv in docker_env.split()))
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"identities": [{"name": "cam", "roles": ["camera"], "token_sha256": "%s"}]}' % ("0" * 64))
    for env in envs:
        # The Dockerfile's public bind addresses need identities: compose and Kubernetes give a file.
        env = {"VOS_AUTH__TOKENS_FILE": str(tokens)} | {k: str(v) for k, v in env.items()
                                                         if k != "VOS_AUTH__TOKENS_FILE"}
        Settings(**_settings_from_env(env))  # extra="forbid": a misspelled name raises


def test_replica_names_agree_across_compose_haproxy_and_prometheus():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    ids = {name: s["environment"]["VOS_SERVER__REPLICA_ID"] for name, s in compose["services"].items()
           if s.get("image") == "vos-service:latest"}
    assert ids == {n: n for n in REPLICAS}
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert prom["scrape_configs"][0]["static_configs"][0]["targets"] == [f"{n}:9464" for n in REPLICAS]
    assert compose["services"]["vos-0"]["stop_grace_period"] == "45s"
    drain = float(compose["services"]["vos-0"]["environment"]["VOS_SERVER__DRAIN_TIMEOUT_S"])
    statefulset = k8s_objects()[("StatefulSet", "vos")]["spec"]["template"]["spec"]
    assert statefulset["terminationGracePeriodSeconds"] > drain and 45 > drain


def test_probes_use_the_grpc_health_service_the_server_registers():
    from vos_service.api.server import SERVICE_NAME

    c = k8s_objects()[("StatefulSet", "vos")]["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"]["grpc"] == {"port": 50051, "service": SERVICE_NAME}
    assert c["livenessProbe"]["grpc"]["port"] == 50051 and "service" not in c["livenessProbe"]["grpc"]


def test_dockerfile_runs_unprivileged_with_a_health_check_and_a_cuda_switch():
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [ln.split(None, 1) for ln in re.sub(r"\\\n", " ", text).splitlines()
                    if ln.strip() and not ln.lstrip().startswith("#")]
    kinds = [i[0] for i in instructions]
    last_stage = kinds[len(kinds) - 1 - kinds[::-1].index("FROM"):]
    user = instructions[kinds.index("USER", len(kinds) - len(last_stage))][1]
    assert "USER" in last_stage and user.split(":")[0] != "0"
    assert "HEALTHCHECK" in last_stage and "/healthz" in text
    assert re.search(r"^ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu$", text, re.M)
    # The shipped model travels inside the package (package data), so `pip install .` carries it.
    pyproject = (REPO / "pyproject.toml").read_text()
    assert "weights/*.pt" in pyproject or "weights/*" in pyproject, "the model must be package data"
    assert "COPY vos_service ./vos_service" in text
