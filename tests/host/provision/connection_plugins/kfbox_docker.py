"""Ansible connection plugin that runs tasks inside a local Docker container (tests only).

ansible-core ships no docker connection and ansible-galaxy is out of reach here, so the
container test drives the real host playbook through this: commands go through the engine's
exec API, files through its archive API (the Docker SDK kfbox already depends on).
"""

from __future__ import annotations

import io
import posixpath
import tarfile

import docker
from ansible.errors import AnsibleConnectionFailure, AnsibleFileNotFound
from ansible.plugins.connection import ConnectionBase
from docker.errors import DockerException, NotFound

DOCUMENTATION = """
name: kfbox_docker
short_description: run tasks in a local Docker container through the engine API
description:
  - Runs commands with the engine's exec API and copies files with its archive API.
author: kfbox
options:
  remote_addr:
    description: The container's name or id.
    vars:
      - name: inventory_hostname
      - name: ansible_host
"""


class Connection(ConnectionBase):
    """One container per inventory host; commands run as the container's default user."""

    transport = "kfbox_docker"
    has_pipelining = False

    def _connect(self) -> Connection:
        if not self._connected:
            name = self.get_option("remote_addr")
            try:
                self._container = docker.from_env().containers.get(name)
            except NotFound as exc:
                raise AnsibleConnectionFailure(f"container {name} does not exist") from exc
            except DockerException as exc:
                raise AnsibleConnectionFailure(
                    f"container {name}: no Docker engine answers: {exc}") from exc
            if self._container.status != "running":
                raise AnsibleConnectionFailure(f"container {name} is {self._container.status}")
            self._connected = True
        return self

    def exec_command(
        self, cmd: str, in_data: bytes | None = None, sudoable: bool = True
    ) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        code, (out, err) = self._container.exec_run(["/bin/sh", "-c", cmd], demux=True)
        return code, out or b"", err or b""

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(in_path, arcname=posixpath.basename(out_path))
        if not self._container.put_archive(posixpath.dirname(out_path), buffer.getvalue()):
            raise AnsibleConnectionFailure(f"could not copy {in_path} to {out_path}")

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        try:
            chunks, _ = self._container.get_archive(in_path)
        except NotFound as exc:
            raise AnsibleFileNotFound(f"{in_path} is not in the container") from exc
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.extractfile(tar.getmembers()[0])
            if member is None:
                raise AnsibleFileNotFound(f"{in_path} is not a regular file")
            with open(out_path, "wb") as target:
                target.write(member.read())

    def close(self) -> None:
        self._connected = False
