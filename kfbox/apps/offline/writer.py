"""`kfbox bundle` for the lite engine: the images, the Debian packages a fresh machine lacks,
kfbox's wheels and the bootstrap, staged beside the output and packed into one archive with its
manifest and .sha256."""

from __future__ import annotations

import gzip
import importlib.metadata
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import docker

from kfbox import __version__
from kfbox.apps.offline.debs import resolve_debs
from kfbox.apps.offline.wheels import download_wheels
from kfbox.engines import ENGINES, engine_class
from kfbox.harness.certificate.results import REPORT_JSON, read_bundle
from kfbox.host.config import SandboxSpec
from kfbox.host.docker_engine import LABEL, ROLE_LABEL, connect
from kfbox.host.errors import KfboxError, PreflightError, UsageError
from kfbox.host.images.base import ensure_base_image
from kfbox.host.images.build import ensure_component_image
from kfbox.host.images.versions import RUNTIME_PACKAGES, image_versions
from kfbox.host.offline.archive import CHUNK, pack, sha256_file
from kfbox.host.offline.manifest import (
    BOOTSTRAP,
    COMPONENT_IMAGES,
    IMAGES,
    INSTALL_DEBS,
    Image,
    Manifest,
    Needs,
    Verified,
)
from kfbox.host.offline.target import Target, this_host
from kfbox.host.progress import Reporter
from kfbox.host.provision.runner import PLAYBOOKS
from kfbox.scenarios.scenario import list_scenarios

BOOTSTRAP_TEMPLATE = Path(__file__).with_name(BOOTSTRAP)
INSTALL_DEBS_SOURCE = PLAYBOOKS / "roles" / "docker_engine" / "files" / INSTALL_DEBS
GZIP_LEVEL = 1
"""Measured on this project's 2-core machine, for the 2.3 GB the four images save to: level 1
gives 731 MB in 28 s, level 6 636 MB in 96 s. The engine (20.10) loads gzip, not zstd."""
VENV_OVERHEAD = 1.5
"""A venv is 1.5x its wheels' unpacked files (bytecode, pip itself): measured, 638/433 MB."""


@dataclass
class WrittenBundle:
    path: Path
    sha256: str
    manifest: Manifest
    seconds: float


def bundle_path(output: Path | None, target: Target) -> Path:
    """The bundle's file: `output` itself, or the default name inside the folder `output`."""
    name = f"kfbox-lite-{__version__}-{target.os_id}{target.version_id}-{target.arch}.tar"
    if output is None:
        return Path.cwd() / name
    path = output / name if output.is_dir() else output
    if not path.parent.is_dir():
        raise UsageError(f"--output {str(output)!r}: no folder {str(path.parent)!r}",
                         fix="give an existing folder, or a file name in one")
    if path.suffix != ".tar":
        raise UsageError(f"--output {str(output)!r} does not end in .tar",
                         fix="give a folder, or a file name ending in .tar")
    return path


def read_verification(path: Path) -> tuple[Verified, dict[str, str]]:
    """The certificate `kfbox certify` wrote at `path` (folder or .tar.gz), and the image id
    it certified per component. UsageError unless it certified a sandbox whose engine's
    bundle is an archive (lite)."""
    certificate = read_bundle(path)
    engine = certificate.configuration.engine
    # An engine whose bundle is an archive runs the very images the archive carries.
    if engine not in ENGINES or engine_class(engine).features.bundle != "archive":
        raise UsageError(f"--verified-with {str(path)!r} certified a {engine} sandbox, not a "
                         "lite one", fix="pass the results of `kfbox certify` on the lite "
                         "sandbox")
    if not certificate.certified:
        raise UsageError(f"--verified-with {str(path)!r}: profile {certificate.profile!r} is "
                         "not certified there", fix="pass the results of a certified run")
    digest = sha256_file(path / REPORT_JSON if path.is_dir() else path)
    certified = {c.name: c.image.rpartition("@")[2]
                 for c in (certificate.sandbox.components if certificate.sandbox else [])}
    return Verified(report=path.name, sha256=digest, profile=certificate.profile,
                    certified=True, scenario=certificate.configuration.scenario,
                    created_at=certificate.created_at), certified


def check_verified(path: Path, certified: dict[str, str], images: dict[str, Image]) -> None:
    """The certificate must have certified exactly the images the bundle carries."""
    for name in COMPONENT_IMAGES[1:]:
        if certified.get(name) != images[name].id:
            raise UsageError(
                f"--verified-with {str(path)!r} certified another {name} image "
                f"({(certified.get(name) or 'none')[:19]}), not the one this bundle carries "
                f"({images[name].tag}, {images[name].id[:19]})",
                fix="certify the sandbox that runs these images (kfbox up, kfbox certify) and "
                "pass that run's results")


def lite_images(client: docker.DockerClient, spec: SandboxSpec,
                reporter: Reporter) -> dict[str, Image]:
    """The lite engine's images as `kfbox up` makes them here (built when missing)."""
    tags = {"base": ensure_base_image(reporter, client)}
    for name in COMPONENT_IMAGES[1:]:
        tags[name] = ensure_component_image(name, reporter, client, ca_bundle=spec.ca_bundle)
    return {name: Image(tag=tag, id=client.images.get(tag).id) for name, tag in tags.items()}


def save_images(tags: list[str], dest: Path, update: Callable[[str], None]) -> int:
    """`docker save` of every tag in one stream (shared layers once), gzip'd into `dest`;
    returns the uncompressed size, which is about what the images take once loaded."""
    tool = shutil.which("docker")
    if tool is None:
        raise PreflightError("the docker command is missing",
                             fix="apt-get install -y docker.io (or run `kfbox provision`)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    saved = 0
    with subprocess.Popen([tool, "save", *tags], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        with dest.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                   compresslevel=GZIP_LEVEL) as packed:
            while chunk := proc.stdout.read(CHUNK):
                saved += len(chunk)
                packed.write(chunk)
                update(f"{saved / 10**6:.0f} MB saved")
        error = proc.stderr.read().decode(errors="replace").strip()
    if proc.returncode != 0:
        raise KfboxError(f"docker save failed: {(error.splitlines() or ['?'])[-1]}")
    return saved


def major_minor(version: str) -> str:
    """'3.11' of a Debian version such as '3.11.2-1+b1' (or '2.36' of '2.36-9+deb12u14')."""
    match = re.match(r"(?:\d+:)?(\d+\.\d+)", version)
    if not match:
        raise KfboxError(f"cannot read a version from {version!r}")
    return match.group(1)


def _unpacked(wheels: Path) -> int:
    return sum(info.file_size for wheel in wheels.glob("*.whl")
               for info in zipfile.ZipFile(wheel).infolist())


def _software(client: docker.DockerClient, images: dict[str, Image],
              wheels: dict[str, str], docker_version: str) -> dict[str, str]:
    """What the certificate of a sandbox from this bundle will name, read from the images."""
    labels = {LABEL: "kfbox-bundle", ROLE_LABEL: "probe"}
    found = image_versions(client, images["jupyter"].tag, ["jupyterlab", "jupyter_server"],
                           labels)
    found |= image_versions(client, images["runtime"].tag, RUNTIME_PACKAGES, labels)
    found |= {name: wheels[name] for name in ("kubeflow", "optuna") if name in wheels}
    return {**found, "docker": docker_version, "kfbox": __version__}


def _made_with(client: docker.DockerClient) -> dict[str, str]:
    apt = subprocess.run(["apt-get", "--version"], capture_output=True, text=True, check=False)
    return {
        "kfbox": __version__,
        "python": sys.version.split()[0],
        "pip": importlib.metadata.version("pip"),
        "apt": (apt.stdout.splitlines() or ["?"])[0].split()[1],
        "docker": client.version().get("Version", ""),
    }


def render_bootstrap(manifest: Manifest) -> str:
    target = manifest.target
    values = {
        "KFBOX_VERSION": manifest.kfbox_version,
        "OS_ID": target.os_id,
        "OS_VERSION": target.version_id,
        "OS_NAME": target.pretty_name,
        "ARCH": target.arch,
        "BOOTSTRAP_DEBS": " ".join(d.file for d in manifest.debs_for("bootstrap")),
        "NEED_STAGE": str(manifest.needs.stage),
        "NEED_VENV": str(manifest.needs.venv),
        "NEED_PACKAGES": str(manifest.needs.packages),
        "NEED_IMAGES": str(manifest.needs.images),
    }
    text = BOOTSTRAP_TEMPLATE.read_text()
    for key, value in values.items():
        if "'" in value:  # the values sit in single quotes
            raise KfboxError(f"cannot write {key}={value!r} into the bootstrap")
        text = text.replace(f"@{key}@", value)
    return text


def write_lite_bundle(output: Path | None, spec: SandboxSpec, reporter: Reporter, *,
                      verified_with: Path | None = None) -> WrittenBundle:
    """Write the bundle (see the module doc); bad input fails before anything is made."""
    started = time.monotonic()
    target = this_host()
    out = bundle_path(output, target)
    verified, certified = read_verification(verified_with) if verified_with else (None, {})
    if shutil.which("debootstrap") is None:
        raise PreflightError("debootstrap is missing: it defines what a fresh machine has",
                             fix="apt-get install -y debootstrap (or run `kfbox provision`)")
    client = connect()
    images = lite_images(client, spec, reporter)
    if verified_with is not None:
        check_verified(verified_with, certified, images)
    staged = out.with_name(f".{out.name}.d")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    try:
        with reporter.step(f"Debian packages a fresh {target.describe()} lacks") as update:
            resolved = resolve_debs(target, staged / "debs", update)
        python = major_minor(resolved.versions["python3"])
        glibc = major_minor(resolved.versions["libc6"])
        with reporter.step(f"Wheels: kfbox {__version__} and its dependencies") as update:
            wheels = download_wheels(staged / "wheels", target, python, glibc, update)
        with reporter.step(f"Saving {len(images)} images (docker save, gzip)") as update:
            unpacked = save_images([i.tag for i in images.values()], staged / IMAGES, update)
        shutil.copy2(INSTALL_DEBS_SOURCE, staged / INSTALL_DEBS)
        # The engine reports its upstream version (20.10.24+dfsg1), not Debian's revision.
        docker_version = next(d.version for d in resolved.debs
                              if d.package == "docker.io").rpartition("-")[0]

        def size_of(folder: str) -> int:
            return sum(p.stat().st_size for p in (staged / folder).rglob("*") if p.is_file())

        bootstrap_debs = sum((staged / d.file).stat().st_size
                             for d in resolved.debs if d.stage == "bootstrap")
        manifest = Manifest(
            kfbox_version=__version__,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            target=target,
            fresh=resolved.fresh,
            images=images,
            debs=resolved.debs,
            wheels=wheels,
            scenarios=list_scenarios(),
            software=_software(client, images, wheels, docker_version),
            made_with=_made_with(client),
            verified=verified,
            sizes={"images": size_of("images"), "wheels": size_of("wheels"),
                   "debs": size_of("debs")},
            needs=Needs(
                stage=bootstrap_debs + size_of("wheels"),
                venv=int(_unpacked(staged / "wheels") * VENV_OVERHEAD),
                packages=sum(d.installed_bytes for d in resolved.debs),
                images=unpacked,
            ),
        )
        (staged / BOOTSTRAP).write_text(render_bootstrap(manifest))
        with reporter.step(f"Writing {out.name}"):
            sha256 = pack(staged, manifest, out)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return WrittenBundle(out, sha256, manifest, time.monotonic() - started)
