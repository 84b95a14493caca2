"""Escape attempts through an engine socket, made the way a notebook would make them, and the
probe each started workload runs. Standard library only: the tests send this file's own source
into containers (`python3 -c BOOT`, the source in KFBOX_PROBE), where nothing else is installed.

Two roles, picked by the first argument:

- `attempt SPEC`: in the notebook-like container that holds the engine's socket. Creates the
  volumes SPEC names, then a workload with SPEC's HostConfig running `probe`; prints one JSON
  line: `{"refused": why}` or `{"exit": code, "probe": findings}`. Removes what it made.
- `probe SPEC`: in that workload. Tries every door SPEC lists and prints its findings.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import http.client
import json
import os
import socket
import sys
from pathlib import Path

BOOT = 'import os; exec(compile(os.environ["KFBOX_PROBE"], "escapes.py", "exec"))'
ENGINE_SOCKET = "/run/kfbox/engine.sock"
"""Where the notebook container gets its rootless Docker engine's socket (docs/security.md)."""
NAMESPACES = ("pid", "net", "ipc", "mnt", "uts", "user", "cgroup")
KVM_GET_API_VERSION = 0xAE00  # _IO(KVMIO=0xAE, 0x00), linux/kvm.h


def source() -> str:
    return Path(__file__).read_text()


def host_namespaces() -> dict[str, str]:
    return {name: os.readlink(f"/proc/self/ns/{name}") for name in NAMESPACES}


def why(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


# --- talking to an engine with nothing but the standard library ---


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def api(sock: str, method: str, path: str, body: object = None,
        timeout: float = 120) -> tuple[int, bytes]:
    conn = UnixHTTP(sock, timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, "/v1.41" + path, body=data, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def message(raw: bytes) -> str:
    try:
        return str(json.loads(raw).get("message", raw[:300]))
    except ValueError:
        return raw[:300].decode(errors="replace")


# --- the attempt: in the container that holds the socket ---


def attempt(spec: dict) -> dict:
    sock = os.environ.get("DOCKER_HOST", "unix://" + ENGINE_SOCKET).removeprefix("unix://")
    labels = spec["labels"]
    made_volumes = []
    try:
        for volume in spec.get("volumes", []):
            status, raw = api(sock, "POST", "/volumes/create", {**volume, "Labels": labels})
            if status != 201:
                return {"refused": f"volume create {status}: {message(raw)}"}
            made_volumes.append(volume["Name"])
        return run_workload(sock, spec)
    finally:
        for name in made_volumes:
            api(sock, "DELETE", f"/volumes/{name}?force=1")


def run_workload(sock: str, spec: dict) -> dict:
    body = {
        "Image": spec["image"],
        "Cmd": ["python3", "-c", BOOT, "probe", json.dumps(spec["probe"])],
        "Env": ["KFBOX_PROBE=" + os.environ["KFBOX_PROBE"]],
        "Tty": True,  # logs come back raw, not in the multiplexed frames
        "Labels": spec["labels"],
        "HostConfig": spec["host_config"],
    }
    status, raw = api(sock, "POST", "/containers/create", body)
    if status != 201:
        return {"refused": f"create {status}: {message(raw)}"}
    container = json.loads(raw)["Id"]
    try:
        status, raw = api(sock, "POST", f"/containers/{container}/start")
        if status not in (204, 304):
            return {"refused": f"start {status}: {message(raw)}"}
        status, raw = api(sock, "POST", f"/containers/{container}/wait", timeout=300)
        code = json.loads(raw).get("StatusCode") if status == 200 else None
        status, raw = api(sock, "GET", f"/containers/{container}/logs?stdout=1&stderr=1")
        lines = raw.decode(errors="replace").strip().splitlines()
        try:
            findings = json.loads(lines[-1])
        except (IndexError, ValueError):
            findings = {"output": lines[-20:]}
        return {"exit": code, "probe": findings}
    finally:
        api(sock, "DELETE", f"/containers/{container}?force=1&v=1")


# --- the probe: in the started workload ---


def try_create(path: str) -> str:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except OSError as exc:
        return why(exc)
    os.write(fd, b"kfbox escape probe\n")
    os.close(fd)
    return "created"


def try_read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            handle.readline()
        return "read"
    except OSError as exc:
        return why(exc)


def try_list(path: str) -> str:
    try:
        return f"listed {len(os.listdir(path))}"
    except OSError as exc:
        return why(exc)


def try_engine(path: str) -> str:
    try:
        status, raw = api(path, "GET", "/version", timeout=5)
    except OSError as exc:
        return why(exc)
    except http.client.HTTPException as exc:
        return type(exc).__name__
    return f"answered {status}: " + str(json.loads(raw).get("Version") if status == 200 else "")


def try_tcp(host: str, port: int) -> str:
    try:
        with socket.create_connection((host, port), timeout=3):
            return "connected"
    except OSError as exc:
        return why(exc) if exc.errno else type(exc).__name__


def try_device(path: str) -> str:
    try:
        fd = os.open(path, os.O_RDWR if path.endswith("kvm") else os.O_RDONLY)
    except OSError as exc:
        return "open " + why(exc)
    try:
        if path.endswith("kvm"):
            return f"KVM_GET_API_VERSION={fcntl.ioctl(fd, KVM_GET_API_VERSION)}"
        return f"read {len(os.read(fd, 512))} bytes"
    except OSError as exc:
        return "use " + why(exc)
    finally:
        os.close(fd)


def try_mount() -> str:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    target = b"/tmp/kfbox-probe-mnt"
    os.makedirs(target, exist_ok=True)
    if libc.mount(b"none", target, b"tmpfs", 0, None) == 0:
        libc.umount(target)
        return "mounted tmpfs"
    return why(OSError(ctypes.get_errno(), ""))


def status_field(name: str) -> str:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def seen_processes(reversed_marker: str) -> tuple[int, bool]:
    """How many processes /proc shows, and whether one carries the host's marker word. The
    spec holds the word reversed: this probe's own command line must not match."""
    marker, count, seen = reversed_marker[::-1], 0, False
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            count += 1
            with contextlib.suppress(OSError):
                seen = seen or marker.encode() in (entry / "cmdline").read_bytes()
    return count, seen


def probe(spec: dict) -> dict:
    processes, marker_seen = seen_processes(spec["marker"])
    return {
        "uid_map": Path("/proc/self/uid_map").read_text().split(),
        "cap_eff": status_field("CapEff"),
        "seccomp": status_field("Seccomp"),
        "namespaces": {name: os.readlink(f"/proc/self/ns/{name}") for name in NAMESPACES},
        "processes": processes,
        "marker_seen": marker_seen,
        "create": {path: try_create(path) for path in spec.get("create", [])},
        "read": {path: try_read(path) for path in spec.get("read", [])},
        "list": {path: try_list(path) for path in spec.get("list", [])},
        "engines": {path: try_engine(path) for path in spec.get("engines", [])},
        "tcp": {f"{h}:{p}": try_tcp(h, p) for h, p in spec.get("tcp", [])},
        "devices": {path: try_device(path) for path in spec.get("devices", [])},
        "mount": try_mount(),
    }


def main(argv: list[str]) -> None:
    role, spec = argv[0], json.loads(argv[1])
    result = attempt(spec) if role == "attempt" else probe(spec)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
