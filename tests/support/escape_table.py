"""The escape table of docs/security.md as data, and its judge: what each attempt asks of the
engine, what its workload probes, and whether anything reached the host (the probe's findings
and the host's own view). Used from a container holding a rootless engine's socket
(tests/host/test_rootless_docker.py) and from a real notebook kernel (tests/e2e)."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

from tests.support import escapes


class Canary:
    """A TCP listener on the host's 127.0.0.1 only: no workload may ever reach it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping:
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = self.sock.accept()
                self.accepted += 1
                conn.close()

    def close(self) -> None:
        self.stopping = True
        self.thread.join()
        self.sock.close()


def inside(mapped: dict[str, str], host_path: str) -> str | None:
    """Where `host_path` appears in a workload whose mounts are `mapped` (host → container)."""
    for source, target in mapped.items():
        root = source.rstrip("/")
        if host_path == source or host_path.startswith(root + "/"):
            return target + host_path[len(root):]
    return None


def probe_spec(mapped: dict[str, str], token: str, canary: Canary, marker: str,
               devices: list[str] = ()) -> dict:
    def where(*paths: str) -> list[str]:
        return [p for p in (inside(mapped, path) for path in paths) if p]

    return {
        "marker": marker[::-1],
        "create": where(f"/etc/{token}", f"/root/{token}"),
        "read": where("/etc/shadow"),
        # /var/run is a symlink to /run on the host: through a bind of / only /run resolves.
        "engines": [*where("/run/docker.sock", "/var/run/docker.sock"), "/var/run/docker.sock"],
        "tcp": [["127.0.0.1", canary.port], ["10.0.2.2", canary.port]],
        "devices": list(devices),
    }


def judge(result: dict, uid: int, token: str, canary: Canary, before: int) -> tuple[str, list]:
    """(how it ended, what escaped): the probe's findings and the host's own view."""
    escaped = []
    for folder in ("/etc", "/root"):  # the host's own view, whatever the probe said
        stray = Path(folder) / token
        if stray.exists():
            stray.unlink()
            escaped.append(f"created {stray} on the host")
    if canary.accepted != before:
        escaped.append("the host's 127.0.0.1 canary accepted a connection")
    if "refused" in result:
        return "refused: " + result["refused"], escaped
    found = result.get("probe", {})
    if "uid_map" not in found:
        return f"no findings: {result}", [*escaped, "the probe did not report"]
    host = escapes.host_namespaces()
    escaped += [f"shares the host's {n} namespace" for n in ("pid", "net", "ipc", "mnt", "user")
                if found["namespaces"][n] == host[n]]
    if found["uid_map"][:3] != ["0", str(uid), "1"]:
        escaped.append(f"container root is not the engine user: uid_map {found['uid_map']}")
    escaped += [f"read {p}" for p, v in found["read"].items() if v == "read"]
    escaped += [f"{p}: {v}" for p, v in found["engines"].items() if v.startswith("answered")]
    # The host's loopback was reached only if the canary, which alone holds that port there,
    # accepted (counted above). An address that answered without it is not this host's: with
    # --disable-host-loopback, slirp4netns passes 10.0.2.2 on to the outer network, where a
    # machine of that address may answer (a CI run saw `connected` there, the canary untouched).
    escaped += [f"{d}: {v}" for d, v in found["devices"].items()
                if not v.startswith(("open", "use"))]
    if found["marker_seen"]:
        escaped.append(f"sees host processes ({found['processes']} in its /proc)")
    how = {k: found[k] for k in ("create", "read", "engines", "devices") if found[k]}
    if "created" in found["create"].values() and not escaped:
        how["create"] = {p: v.replace("created", "created in the engine's private copy only")
                         for p, v in found["create"].items()}
    return (f"confined (exit {result['exit']}): {how} tcp={found['tcp']} "
            f"mount={found['mount']} CapEff={found['cap_eff']} seccomp={found['seccomp']} "
            f"procs={found['processes']}"), escaped


def root_disk() -> str:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        source, target = line.split()[:2]
        if target == "/" and source.startswith("/dev/"):
            return source
    return "/dev/vda"


def device(path: str) -> dict:
    return {"PathOnHost": path, "PathInContainer": path, "CgroupPermissions": "rwm"}


# name, HostConfig, host path → container path, devices to open, volumes to create
ATTEMPTS = [
    ("privileged", {"Privileged": True}, {}, [root_disk(), "/dev/kvm"], []),
    ("bind-root", {"Binds": ["/:/host:rw"]}, {"/": "/host"}, [], []),
    ("bind-etc", {"Binds": ["/etc:/hetc:rw"]}, {"/etc": "/hetc"}, [], []),
    ("bind-root-home", {"Binds": ["/root:/hroot:rw"]}, {"/root": "/hroot"}, [], []),
    ("bind-host-engine-socket", {"Binds": ["/var/run/docker.sock:/var/run/docker.sock:rw"]},
     {}, [], []),
    ("volume-bind-etc", {"Binds": ["VOLUME:/hvol:rw"]}, {"/etc": "/hvol"}, [],
     [{"Driver": "local", "DriverOpts": {"type": "none", "o": "bind", "device": "/etc"}}]),
    ("network-host", {"NetworkMode": "host"}, {}, [], []),
    ("pid-host", {"PidMode": "host"}, {}, [], []),
    ("ipc-host", {"IpcMode": "host"}, {}, [], []),
    ("cap-add-sys-admin", {"CapAdd": ["SYS_ADMIN"]}, {}, [], []),
    ("device-kvm", {"Devices": [device("/dev/kvm")]}, {}, ["/dev/kvm"], []),
    ("device-root-disk", {"Devices": [device(root_disk())]}, {}, [root_disk()], []),
    ("seccomp-unconfined", {"SecurityOpt": ["seccomp=unconfined"]}, {}, [], []),
    ("all-at-once", {"Privileged": True, "PidMode": "host", "NetworkMode": "host",
                     "Binds": ["/:/host:rw"]}, {"/": "/host"}, [root_disk()], []),
]


def attempt_spec(name: str, run: str, image: str, labels: dict[str, str], canary: Canary,
                 marker: str) -> tuple[dict, str]:
    """(the `escapes.attempt` spec of attempt `name`, the token its probe writes)."""
    _, host_config, mapped, devices, volumes = next(a for a in ATTEMPTS if a[0] == name)
    token = f"kfbox-escape-{run}-{name}"
    volume_names = [f"kfbox-escape-{run}-{i}" for i in range(len(volumes))]
    binds = [b.replace("VOLUME", volume_names[0]) if volumes else b
             for b in host_config.get("Binds", [])]
    return {
        "image": image,
        "labels": labels,
        "volumes": [{"Name": n, **v} for n, v in zip(volume_names, volumes, strict=True)],
        "host_config": {**host_config, **({"Binds": binds} if binds else {})},
        "probe": probe_spec(mapped, token, canary, marker, devices),
    }, token
