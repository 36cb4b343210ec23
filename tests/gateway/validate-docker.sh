#!/usr/bin/env bash
# Checks what can be checked of the container files without a container engine: parses
# deploy/Dockerfile with BuildKit's own parser (the `dockerfile` package) and lints it with
# hadolint, checks the shape of its images (non-root, HEALTHCHECK, nothing to build with in the
# final stages; the *-prebuilt targets share the runtime stage and never reach the rust: stage;
# nothing Docker 20.10's built-in frontend cannot read), that Dockerfile.dockerignore lets every
# workspace member in, and that deploy/compose.yaml hangs together (dependencies exist, the
# gateway's environment fills every placeholder of gateway.conf, only the gateway is published,
# no secret is written in it, the services run confined as tests/images/run.sh runs them).
# Building and running the images: `make test-images`. Exits non-zero on the first problem.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/gateway/venv.sh
ensure_venv
# DL3008 (pin apt package versions) is ignored on purpose: Debian replaces a version when it
# ships a security fix, and the images should get it.
"$VENV/bin/hadolint" --no-color --ignore DL3008 --failure-threshold warning deploy/Dockerfile
echo "    hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}'): deploy/Dockerfile has no warnings (DL3008 aside)"

# The HEALTHCHECK's probe is a file of its own (20.10's frontend has no heredocs).
[[ -x deploy/probe-ready ]] || { echo "    FAIL: deploy/probe-ready is missing or not executable"; exit 1; }
bash -n deploy/probe-ready

"$VENV/bin/python" - <<'EOF'
import re, sys, tomllib
import dockerfile, yaml

problems = []

# --- deploy/Dockerfile, as BuildKit parses it --------------------------------------------
commands = dockerfile.parse_file("deploy/Dockerfile")
stages, order = {}, []
for c in commands:
    if c.cmd == "FROM":
        name = c.value[2] if len(c.value) > 2 and c.value[1].upper() == "AS" else c.value[0]
        stages[name] = {"from": c.value[0], "cmds": []}
        order.append(name)
    elif order:
        stages[order[-1]]["cmds"].append(c)

def effective(stage, cmd):
    """The last value of an instruction in a stage or the stages it is built FROM."""
    while stage in stages:
        for c in reversed(stages[stage]["cmds"]):
            if c.cmd == cmd:
                return c
        stage = stages[stage]["from"]
    return None

# Docker 20.10's built-in frontend (Debian's docker.io) must read the file: a `# syntax=` line
# would fetch another frontend from a registry, and heredocs are unknown to it.
text = open("deploy/Dockerfile").read()
if re.search(r"(?im)^#\s*syntax\s*=", text):
    problems.append("a `# syntax=` line: Docker 20.10 would pull a frontend from a registry")
for c in commands:
    if c.cmd in ("RUN", "COPY", "ADD") and re.search(r"<<-?['\"]?[A-Za-z_]", c.original):
        problems.append(f"a heredoc, which Docker 20.10 cannot read: {c.original[:60]}")

build_tools = re.compile(r"\b(cargo|rustc|rustup|gcc|g\+\+|clang|make|pkg-config|libssl-dev|build-essential)\b")
buildkit_only = re.compile(r"^--(mount|chmod|link|network|security)\b")
chains = {}
for final, port, binary, copied in (
    ("auth-server", "9000", "auth-server", ("--from=build", "/out/auth-server")),
    ("resource-api", "9001", "resource-api", ("--from=build", "/out/resource-api")),
    ("auth-server-prebuilt", "9000", "auth-server", (None, "bin/auth-server")),
    ("resource-api-prebuilt", "9001", "resource-api", (None, "bin/resource-api")),
):
    if final not in stages:
        problems.append(f"no stage {final}")
        continue
    chain, s = [], final
    while s in stages:
        chain.append(s)
        s = stages[s]["from"]
    chains[final] = chain
    if "build" in chain:
        problems.append(f"{final} is built on the build stage")
    for s in chain:
        for c in stages[s]["cmds"]:
            if c.cmd == "RUN" and build_tools.search(" ".join(c.value)):
                problems.append(f"{final}: stage {s} installs or runs build tools: {c.original[:80]}")
    user = effective(final, "USER")
    if user is None or user.value[0].split(":")[0] in ("0", "root"):
        problems.append(f"{final} runs as root")
    health = effective(final, "HEALTHCHECK")
    if health is None or "probe-ready" not in " ".join(health.value):
        problems.append(f"{final} has no HEALTHCHECK running probe-ready")
    entry = effective(final, "ENTRYPOINT")
    if entry is None or entry.value[0] != binary:
        problems.append(f"{final}: ENTRYPOINT is not {binary}")
    expose = effective(final, "EXPOSE")
    if expose is None or expose.value[0] != port:
        problems.append(f"{final}: does not EXPOSE {port}")
    env = effective(final, "ENV")
    values = dict(zip(env.value[::2], env.value[1::2])) if env else {}
    bind = "AUTH_BIND" if binary == "auth-server" else "API_BIND"
    if values.get(bind) != f"0.0.0.0:{port}":
        problems.append(f"{final}: {bind} is not 0.0.0.0:{port}")
    if values.get("LOG_FORMAT") != "json":
        problems.append(f"{final}: LOG_FORMAT is not json")
    if any(k.startswith(("AUTH_", "API_")) and k.endswith("LOG_FORMAT") for k in values):
        problems.append(f"{final}: sets a service-prefixed LOG_FORMAT; LOG_FORMAT is the one for both")
    copies = [c for c in stages[final]["cmds"] if c.cmd == "COPY"]
    flag, source = copied
    if [c.value[0] for c in copies] != [source] or copies[0].flags != ((flag,) if flag else ()):
        problems.append(f"{final}: copies something other than its binary ({source})")
    if final.endswith("-prebuilt"):
        # The classic builder builds every stage before the target: none of them may be the
        # build stage, or use what only BuildKit knows.
        for s in order[: order.index(final) + 1]:
            if s == "build" or stages[s]["from"].startswith("rust:"):
                problems.append(f"{final}: stage {s} comes before it (the classic builder would build it)")
            for c in stages[s]["cmds"]:
                if any(buildkit_only.match(f) for f in c.flags) and not (c.cmd == "COPY" and c.flags == ("--from=build",)):
                    problems.append(f"{final}: stage {s} uses a BuildKit-only flag: {c.original[:60]}")
# One runtime stage for both ways of building each service.
for full in ("auth-server", "resource-api"):
    pre = full + "-prebuilt"
    if full in chains and pre in chains:
        if chains[full][1:] != chains[pre][1:] or "runtime" not in chains[full]:
            problems.append(f"{full} and {pre} do not share their runtime stages: {chains[full]} / {chains[pre]}")
if not any(c.cmd == "COPY" and c.value[0] == "deploy/probe-ready" for c in stages.get("runtime", {}).get("cmds", [])):
    problems.append("the runtime stage does not COPY deploy/probe-ready")

# --- Dockerfile.dockerignore lets the whole workspace in ------------------------------------
ignore = [l.strip() for l in open("deploy/Dockerfile.dockerignore") if l.strip() and not l.startswith("#")]
members = tomllib.load(open("Cargo.toml", "rb"))["workspace"]["members"]
for needed in ["Cargo.toml", "Cargo.lock", "rust-toolchain.toml"] + [m + "/" for m in members if m != "tests"]:
    if "!" + needed not in ignore:
        problems.append(f"Dockerfile.dockerignore does not let {needed} in")
for needed in ("!tests/Cargo.toml", "!tests/src/", "!tests/api/"):
    if needed not in ignore:
        problems.append(f"Dockerfile.dockerignore does not let {needed[1:]} in (cargo needs every member)")
for needed in ("!deploy/probe-ready", "!bin/auth-server", "!bin/resource-api"):
    if needed not in ignore:
        problems.append(f"Dockerfile.dockerignore does not let {needed[1:]} in (the images COPY it)")

# --- deploy/compose.yaml --------------------------------------------------------------------
compose = yaml.safe_load(open("deploy/compose.yaml"))
services = compose["services"]
for name, svc in services.items():
    for dep in (svc.get("depends_on") or {}):
        if dep not in services:
            problems.append(f"compose: {name} depends on unknown service {dep}")
    build = svc.get("build")
    if build and build.get("target") not in stages:
        problems.append(f"compose: {name} builds unknown target {build.get('target')}")
    if svc.get("ports") and name != "gateway":
        problems.append(f"compose: {name} publishes ports; only the gateway should")
    for key, value in (svc.get("environment") or {}).items():
        if (re.search(r"PASSWORD|SECRET|KEY_ENCRYPTION_KEY$", key) and not key.endswith("_FILE")) or re.search(r"://[^/@]*:[^/@]*@", str(value)):
            problems.append(f"compose: {name} writes a secret in {key}")
    if name.startswith("auth-") and svc["environment"].get("AUTH_ISSUER") != "http://localhost:8080":
        problems.append(f"compose: {name} has issuer {svc['environment'].get('AUTH_ISSUER')}")
    if build and build.get("dockerfile") == "deploy/Dockerfile":
        # As tests/images/run.sh runs the images.
        confined = (svc.get("read_only") is True, svc.get("cap_drop") == ["ALL"],
                    "no-new-privileges=true" in (svc.get("security_opt") or []),
                    "user" not in svc)
        if not all(confined):
            problems.append(f"compose: {name} is not read_only, cap_drop ALL, no-new-privileges, "
                            "with the image's user (10001)")
        for key in (svc.get("environment") or {}):
            if key.endswith("LOG_FORMAT") and key != "LOG_FORMAT":
                problems.append(f"compose: {name} sets {key}; LOG_FORMAT is the variable for both services")
conf = open("deploy/nginx/gateway.conf").read()
placeholders = set(re.findall(r"\$\{([A-Z0-9_]+)\}", "\n".join(l for l in conf.splitlines() if not l.lstrip().startswith("#"))))
gateway_env = set(services["gateway"]["environment"])
if placeholders - gateway_env:
    problems.append(f"compose: the gateway does not set {sorted(placeholders - gateway_env)}")
mounts = [v for v in services["gateway"]["volumes"] if "gateway.conf" in v]
if mounts != ["./nginx/gateway.conf:/etc/nginx/templates/default.conf.template:ro"]:
    problems.append(f"compose: the gateway mounts {mounts}")

if problems:
    for p in problems:
        print(f"    FAIL: {p}")
    sys.exit(1)
print(f"    BuildKit's parser reads deploy/Dockerfile ({len(commands)} instructions, stages "
      f"{', '.join(order)}); auth-server and resource-api, from source or -prebuilt: non-root, "
      "HEALTHCHECK probe-ready, one binary, no build tools, one runtime stage; no heredoc, no "
      "`# syntax=` (Docker 20.10 reads it); the -prebuilt targets come before the rust: stage")
print("    Dockerfile.dockerignore lets every workspace member in; compose.yaml: dependencies "
      f"exist, the gateway sets {', '.join(sorted(placeholders))}, only it is published, no "
      "secret written, the services built from the Dockerfile read-only, without capabilities, "
      "no-new-privileges, no service-prefixed LOG_FORMAT")
EOF
