#!/usr/bin/env python3
"""deploy/kubernetes/, checked offline (no Kubernetes cluster runs here):

1. schemas: every document validates against the Kubernetes API's OpenAPI schemas that the npm
   package kubernetes-models carries (types, required fields, enums, formats), and a broken
   copy is rejected, so the check can fail;
2. the rules of the issue, which no schema knows: readiness on /ready and liveness on /live of
   the port zen's --metrics serves, a preStop pause, terminationGracePeriodSeconds above the
   pause plus --drain-timeout, non-root with a read-only root file system, the Service's and the
   PodDisruptionBudget's selectors matching the pods;
3. the real zen runs the container's command line (Dockerfile ENTRYPOINT + the Deployment's args,
   ports moved to free ones) as the Deployment's non-root user, and /ready and /live answer.

    kubernetes_test.py ZEN WORK-DIRECTORY
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

ZEN = os.path.abspath(sys.argv[1])
WORK = os.path.abspath(sys.argv[2])
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MANIFESTS = os.path.join(ROOT, "deploy", "kubernetes")
VALIDATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kubernetes")


def fail(message):
    print("FAIL: " + message, flush=True)
    sys.exit(1)


def load():
    documents = {}
    for name in sorted(os.listdir(MANIFESTS)):
        if name.endswith(".yaml"):
            with open(os.path.join(MANIFESTS, name)) as f:
                for document in yaml.safe_load_all(f):
                    documents[document["kind"]] = document
    if set(documents) != {"Deployment", "Service", "PodDisruptionBudget"}:
        fail(f"deploy/kubernetes/ holds {sorted(documents)}")
    return documents


def install_validator():
    """npm ci of the pinned validator into WORK (once: later runs reuse it)."""
    os.makedirs(WORK, exist_ok=True)
    for name in ("package.json", "package-lock.json", "validate.mjs"):
        shutil.copy(os.path.join(VALIDATOR, name), os.path.join(WORK, name))
    marker = os.path.join(WORK, "node_modules", "kubernetes-models", "package.json")
    if not os.path.exists(marker):
        result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WORK,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        if result.returncode != 0:
            fail("npm ci of the validator failed:\n" + result.stdout)


def validate(*files):
    return subprocess.run(["node", os.path.join(WORK, "validate.mjs"), *files], cwd=WORK,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)


def check_schemas():
    install_validator()
    files = [os.path.join(MANIFESTS, name) for name in sorted(os.listdir(MANIFESTS)) if name.endswith(".yaml")]
    result = validate(*files)
    print(result.stdout, end="", flush=True)
    if result.returncode != 0 or result.stdout.count(": valid") != 3:
        fail("deploy/kubernetes/ does not validate")
    # The same check on broken copies must fail: a string port, a PDB budget that is a list.
    with tempfile.TemporaryDirectory() as scratch:
        broken = []
        for name, old, new in [("deployment.yaml", "containerPort: 1060", 'containerPort: "zen"'),
                               ("poddisruptionbudget.yaml", "maxUnavailable: 1", "maxUnavailable: [1]")]:
            with open(os.path.join(MANIFESTS, name)) as f:
                text = f.read()
            if old not in text:
                fail(f"{name} no longer has {old!r} to break")
            path = os.path.join(scratch, name)
            with open(path, "w") as f:
                f.write(text.replace(old, new))
            broken.append(path)
        result = validate(*broken)
        print(result.stdout, end="", flush=True)
        if result.returncode == 0 or result.stdout.count("invalid") != 2:
            fail("the validator accepted a broken manifest")


def option(args, name):
    if name not in args:
        fail(f"the Deployment's args have no {name}")
    return args[args.index(name) + 1]


def check_rules(documents):
    deployment = documents["Deployment"]
    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    (container,) = spec["containers"]
    args = container["args"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    metrics_port = int(option(args, "--metrics").rsplit(":", 1)[1])
    if ports.get("metrics") != metrics_port:
        fail(f"the metrics port {ports.get('metrics')} is not --metrics's {metrics_port}")
    for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/live")):
        get = container[probe]["httpGet"]
        if get["path"] != path or get["port"] not in ("metrics", metrics_port):
            fail(f"{probe} asks {get}, not {path} on the metrics port")
    pause = container["lifecycle"]["preStop"]["exec"]["command"]
    if pause[0] != "/bin/sleep":
        fail(f"preStop is {pause}")
    drain = float(option(args, "--drain-timeout"))
    grace = spec["terminationGracePeriodSeconds"]
    if not grace > float(pause[1]) + drain:
        fail(f"terminationGracePeriodSeconds {grace} is not above the preStop pause {pause[1]} + drain {drain}")
    security = spec["securityContext"]
    if security.get("runAsNonRoot") is not True or not security.get("runAsUser"):
        fail(f"the pod may run as root: {security}")
    own = container["securityContext"]
    if own.get("readOnlyRootFilesystem") is not True or own.get("allowPrivilegeEscalation") is not False:
        fail(f"the container's file system is writable or it may escalate: {own}")
    labels = pod["metadata"]["labels"]
    for kind, selector in (("Service", documents["Service"]["spec"]["selector"]),
                           ("PodDisruptionBudget", documents["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]),
                           ("Deployment", deployment["spec"]["selector"]["matchLabels"])):
        if any(labels.get(key) != value for key, value in selector.items()):
            fail(f"the {kind}'s selector {selector} does not match the pods' labels {labels}")
    for port in documents["Service"]["spec"]["ports"]:
        if port["targetPort"] not in ports:
            fail(f"the Service targets port {port['targetPort']}, which the container does not name")
    budget = documents["PodDisruptionBudget"]["spec"]["maxUnavailable"]
    if not 0 < budget < deployment["spec"]["replicas"]:
        fail(f"the PodDisruptionBudget allows {budget} of {deployment['spec']['replicas']} pods down")
    print("the issue's rules hold: probes, preStop, grace period, non-root, read-only, selectors", flush=True)
    return args, security["runAsUser"], security["runAsGroup"]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def entrypoint():
    with open(os.path.join(ROOT, "deploy", "Dockerfile")) as f:
        match = re.search(r'^ENTRYPOINT \[(.*)\]$', f.read(), re.M)
    return [part.strip().strip('"') for part in match.group(1).split(",")]


def http_status(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def check_zen_runs_the_command_line(args, uid, gid):
    command = entrypoint()
    if command[:2] != ["/usr/bin/zen", "serve"]:
        fail(f"the Dockerfile's ENTRYPOINT is {command}")
    service_port, metrics_port = free_port(), free_port()
    # A copy of zen any user can run: the checkout may sit in a directory only root enters.
    scratch = tempfile.mkdtemp(prefix="zen-kubernetes-test-")
    os.chmod(scratch, 0o755)
    shutil.copy(ZEN, os.path.join(scratch, "zen"))
    command = [os.path.join(scratch, "zen"), *command[1:]]
    command[command.index("-p") + 1] = str(service_port)
    args = list(args)
    args[args.index("--metrics") + 1] = f"127.0.0.1:{metrics_port}"
    command += args
    if os.geteuid() == 0:
        command = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *command]
    print("$ " + " ".join(command), flush=True)
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if http_status(metrics_port, "/ready") == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None:
                fail("zen exited:\n" + server.stdout.read())
            time.sleep(0.05)
        else:
            fail("/ready never said 200")
        if http_status(metrics_port, "/live") != 200:
            fail("/live is not 200")
        with socket.create_connection(("127.0.0.1", service_port), timeout=5) as connection:
            connection.sendall(b"Beautiful is better than?")
            if connection.recv(100) != b"Ugly.":
                fail("no answer from the container's command line")
        with open(f"/proc/{server.pid}/status") as status:
            real_uid = re.search(r"^Uid:\s+(\d+)", status.read(), re.M).group(1)
        if os.geteuid() == 0 and int(real_uid) != uid:
            fail(f"zen runs as uid {real_uid}, not {uid}")
        print(f"zen serves the container's command line as uid {real_uid}: /ready 200, /live 200", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)
    if server.returncode != 0:
        fail(f"zen exited {server.returncode} on SIGTERM")


def main():
    documents = load()
    check_schemas()
    args, uid, gid = check_rules(documents)
    check_zen_runs_the_command_line(args, uid, gid)
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
