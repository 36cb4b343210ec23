#!/usr/bin/env bash
# Validates deploy/k8s: builds the kustomization, checks every object against the Kubernetes
# schemas (kubernetes-validate from PyPI, pinned in requirements.txt, in a venv under target/),
# and checks what a schema cannot: no Secret objects; probes, resources, non-root and no service
# links on every Deployment; the autoscaler and disruption budget aimed at the auth-server; the
# gateway ConfigMap equal to deploy/nginx/gateway.conf, and every placeholder of it set. Exits
# non-zero on the first problem.
#
#   bash tests/gateway/validate-k8s.sh                  validate
#   bash tests/gateway/validate-k8s.sh --sync-gateway   first copy deploy/nginx/gateway.conf
#                                                       into deploy/k8s/gateway.yaml
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ ${1:-} == --sync-gateway ]]; then
  python3 - <<'PY'
conf = open("deploy/nginx/gateway.conf").read()
lines = open("deploy/k8s/gateway.yaml").read().split("\n")
start = lines.index("  default.conf.template: |") + 1
end = lines.index("---", start)
block = [("    " + line) if line else "" for line in conf.rstrip("\n").split("\n")]
open("deploy/k8s/gateway.yaml", "w").write("\n".join(lines[:start] + block + lines[end:]))
PY
  echo "    copied deploy/nginx/gateway.conf into deploy/k8s/gateway.yaml"
fi

source tests/gateway/venv.sh

# The oldest Kubernetes still in common support, and the newest the validator knows.
K8S_VERSIONS=(1.31.0 1.37.0)
OUT=$(mktemp -d "${TMPDIR:-/tmp}/validate-k8s.XXXXXX")
trap 'rm -rf "$OUT"' EXIT

ensure_venv
echo "    kubernetes-validate $("$VENV/bin/kubernetes-validate" --version)"

# Build what `kubectl apply -k` would apply. Without kubectl, the listed files as they are
# (kustomize's namespace, labels and image tags are then not applied, but the schemas hold).
rendered=$OUT/rendered.yaml
if command -v kubectl >/dev/null 2>&1; then
  kubectl kustomize deploy/k8s > "$rendered"
  echo "    kubectl kustomize deploy/k8s: $(grep -c '^kind:' "$rendered") objects"
else
  "$VENV/bin/python" - "$rendered" <<'EOF'
import sys, yaml
k = yaml.safe_load(open("deploy/k8s/kustomization.yaml"))
with open(sys.argv[1], "w") as out:
    for name in k["resources"]:
        out.write("---\n" + open(f"deploy/k8s/{name}").read())
EOF
  echo "    kubectl not found: validating the kustomization's files without building it"
fi

for version in "${K8S_VERSIONS[@]}"; do
  "$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$rendered"
  echo "    schemas of Kubernetes $version: every object valid (strict: no unknown fields)"
done

"$VENV/bin/python" - "$rendered" <<'EOF'
import re, sys, yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
problems = []

if "Secret" in by_kind:
    problems.append("a Secret object is committed: reference secrets, never write them")

for name, dep in by_kind.get("Deployment", {}).items():
    for c in dep["spec"]["template"]["spec"]["containers"]:
        where = f"deployment/{name} container {c['name']}"
        res = c.get("resources", {})
        for part in ("requests", "limits"):
            for what in ("cpu", "memory"):
                if what not in res.get(part, {}):
                    problems.append(f"{where}: no {part}.{what}")
        live = c.get("livenessProbe", {}).get("httpGet", {}).get("path")
        ready = c.get("readinessProbe", {}).get("httpGet", {}).get("path")
        want = ("/healthz", "/healthz") if name == "gateway" else ("/health/live", "/health/ready")
        if (live, ready) != want:
            problems.append(f"{where}: probes {live}, {ready}; expected {want}")
        if not c.get("securityContext", {}).get("readOnlyRootFilesystem"):
            problems.append(f"{where}: root filesystem is writable")
        for env in c.get("env", []):
            if env.get("value") and any(s in env["name"] for s in ("SECRET", "PASSWORD", "DATABASE_URL", "KEY_ENCRYPTION_KEY")) and not env["name"].endswith("_FILE"):
                problems.append(f"{where}: {env['name']} is written in the manifest")
    pod = dep["spec"]["template"]["spec"]
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        problems.append(f"deployment/{name}: may run as root")
    # Service links put AUTH_SERVER_PORT & co. into every pod; the services refuse unknown
    # AUTH_* / API_* variables, so they would not start.
    if pod.get("enableServiceLinks") is not False:
        problems.append(f"deployment/{name}: enableServiceLinks is not false")

for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
    if "auth-server" not in by_kind.get(kind, {}):
        problems.append(f"no {kind} for the auth-server")
hpa = by_kind.get("HorizontalPodAutoscaler", {}).get("auth-server")
if hpa and hpa["spec"]["scaleTargetRef"]["name"] != "auth-server":
    problems.append("the autoscaler does not scale the auth-server")
if "replicas" in by_kind["Deployment"]["auth-server"]["spec"]:
    problems.append("deployment/auth-server sets replicas, which fights its autoscaler")

for cm in by_kind.get("ConfigMap", {}).values():
    for key, value in cm.get("data", {}).items():
        if key.endswith("DATABASE_URL") or "SECRET" in key or key == "AUTH_KEY_ENCRYPTION_KEY":
            problems.append(f"configmap/{cm['metadata']['name']}: {key} belongs in a Secret")

conf = open("deploy/nginx/gateway.conf").read()
placeholders = set(re.findall(r"\$\{([A-Z0-9_]+)\}", "\n".join(l for l in conf.splitlines() if not l.lstrip().startswith("#"))))
gateway_env = {e["name"] for c in by_kind["Deployment"]["gateway"]["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])}
if placeholders - gateway_env:
    problems.append(f"deployment/gateway does not set {sorted(placeholders - gateway_env)}")

gateway = by_kind.get("ConfigMap", {}).get("gateway-config", {}).get("data", {}).get("default.conf.template")
if gateway != conf:
    problems.append("configmap/gateway-config is not a copy of deploy/nginx/gateway.conf: "
                    "run: bash tests/gateway/validate-k8s.sh --sync-gateway")

if problems:
    for p in problems:
        print(f"    FAIL: {p}")
    sys.exit(1)
print("    no Secret objects; probes, requests, limits, non-root and no service links everywhere; "
      "HPA and PDB on the auth-server; the gateway ConfigMap equals deploy/nginx/gateway.conf and "
      "its Deployment sets every placeholder")
EOF
