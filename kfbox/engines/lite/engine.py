"""The `lite` engine: the sandbox as labelled containers on one Docker engine, no Kubernetes: the
host's, or a rootless Docker engine of the sandbox's own (`lite.docker: rootless`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, NotFound

from kfbox.engines import tutorials
from kfbox.engines.base import (
    Access,
    Capabilities,
    Check,
    ComponentStatus,
    Engine,
    EngineFeatures,
    SandboxStatus,
    Workload,
)
from kfbox.engines.lite import components as comp
from kfbox.engines.lite import registry_cache, registry_push, rootless
from kfbox.engines.lite.bundle_install import verified_bundle
from kfbox.engines.lite.bundle_record import bundle_record
from kfbox.engines.platform import Platform
from kfbox.engines.tracking import TRACKING_USER
from kfbox.host import listen, preflight
from kfbox.host.diskspace import NEEDS_GIB, require_space
from kfbox.host.docker_engine import COMPONENT_LABEL, LABEL, ROLE_LABEL, RUN_LABEL, connect
from kfbox.host.errors import KfboxError
from kfbox.host.gpu import detect_gpus, engine_has_nvidia_runtime
from kfbox.host.images.base import ensure_base_image
from kfbox.host.images.build import ensure_component_image, prefetch_wheels
from kfbox.host.images.versions import RUNTIME_PACKAGES, image_versions, installed_versions
from kfbox.host.progress import Reporter
from kfbox.host.rootless_docker import (
    RootlessDocker,
    check_host,
    find_rootless_docker,
    record_layer_digests,
    remove_rootless_docker,
    stop_rootless_docker,
)
from kfbox.host.statefiles import StateFolder

CONFIG_LABEL = "kfbox.config-hash"
DATA_LABEL = "kfbox.data"
READY_TIMEOUT_S = 120
TRACKING_SECRET = "tracking-password"
TRACKING_CSRF = "tracking-csrf-key"
STATE_FILE = "state.json"
"""What `up` made: each component's image and URL, and the ML runtime image."""


class LiteEngine(Engine):
    name = "lite"
    features = EngineFeatures(bundle="archive", listen=True, seats=True)

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._client: docker.DockerClient | None = None
        self._host: docker.DockerClient | None = None

    # ---- plumbing --------------------------------------------------------------------------

    @property
    def rootless(self) -> bool:
        return self.spec.lite.docker == "rootless"

    @property
    def host_client(self) -> docker.DockerClient:
        """The host's Docker engine: where images are built (once for every sandbox)."""
        if self._host is None:
            self._host = connect()
        return self._host

    @property
    def client(self) -> docker.DockerClient:
        """The Docker engine the sandbox runs in."""
        if self._client is None:
            if self.rootless:
                engine = self._rootless_engine()
                if engine is None or not engine.answers():
                    raise KfboxError(
                        f"the rootless Docker engine of sandbox {self.spec.name!r} is not running",
                        fix="run `kfbox up` to start it")
                self._client = engine.client()
            else:
                self._client = self.host_client
        return self._client

    @property
    def docker_host(self) -> str | None:
        """DOCKER_HOST for a process that works in the sandbox's engine (None: the host's)."""
        engine = self._rootless_engine()
        return engine.docker_host if engine is not None else None

    def _rootless_engine(self) -> RootlessDocker | None:
        return find_rootless_docker(self.spec.name) if self.rootless else None

    def labels(self, **extra: str) -> dict[str, str]:
        return {LABEL: self.spec.name, **extra}

    def filters(self, **labels: str) -> dict[str, list[str]]:
        """Docker filters for this sandbox's resources, narrowed by more labels if given."""
        return {"label": [f"{LABEL}={self.spec.name}", *(f"{k}={v}" for k, v in labels.items())]}

    @property
    def state(self) -> StateFolder:
        return StateFolder(self.spec.name)

    def token(self) -> str:
        return self.state.token()

    def tracking_password(self) -> str:
        """The tracking server's password for its one user (TRACKING_USER)."""
        return self.state.secret(TRACKING_SECRET)

    def _image(self, component: str, reporter: Reporter) -> str:
        """The component's image: the offline bundle's the sandbox was installed from (loaded,
        never built or fetched), else built here from its inputs when missing."""
        installed = bundle_record(self.spec.name)
        if installed is not None:
            return installed.image(component, self.host_client)
        return ensure_component_image(
            component, reporter, self.host_client, ca_bundle=self.spec.ca_bundle
        )

    def base_image(self, reporter: Reporter) -> str:
        """The Debian base image helper containers run (copied into a rootless engine at up)."""
        return ensure_base_image(reporter, self.host_client)

    def runtime_image(self, reporter: Reporter) -> str:
        """The ML runtime image scenario images build FROM; built at `up`, it is a component."""
        return self._image("runtime", reporter)

    def _images(self, reporter: Reporter) -> dict[str, str]:
        """Every image the sandbox runs: component → tag, and `runtime`. Installed from an
        offline bundle, the bundle's (loaded, never built or fetched); else built when missing,
        the wheel downloads (network) beside the base image's debootstrap (mostly too)."""
        wanted = [*(c for c in ("registry", "jupyter", "tracking")
                    if c in self.spec.lite.components), "runtime"]
        if bundle_record(self.spec.name) is None:
            with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
                wheels = [pool.submit(prefetch_wheels, name, reporter.beside())
                          for name in wanted]
                self.base_image(reporter)
                for download in wheels:
                    download.result()
        images = {name: self._image(name, reporter) for name in wanted}
        engine = self._rootless_engine()
        if engine is not None:
            # The copy is mostly disk, the registry cache's compression mostly CPU: beside
            # each other, a fresh machine waits for the longer one only.
            stop = threading.Event()  # set when the copy fails or is interrupted (Ctrl-C)
            with ThreadPoolExecutor(max_workers=1) as pool:
                if "registry" in images and not self._has_volume("registry"):
                    pool.submit(self._build_registry_cache, images, reporter.beside(), stop)
                try:
                    rootless.copy_images(engine, self.host_client,
                                         [*images.values(), self.base_image(reporter)],
                                         reporter)
                except BaseException:
                    stop.set()
                    raise
        return images

    def _build_registry_cache(self, images: dict[str, str], reporter: Reporter,
                              stop: threading.Event) -> None:
        """The host's cache of the runtime's compressed layers, made by the host's engine when
        missing (registry_cache.build); it only saves time, so a failure is a warning."""
        runtime_id = self.host_client.images.get(images["runtime"]).id
        if registry_cache.cache_path(runtime_id).is_dir():
            return
        try:
            with reporter.step("Caching the ML runtime's compressed layers "
                               "(once, on the host's engine)", action="registry-cache:build"):
                registry_cache.build(self.host_client, images["runtime"], runtime_id,
                                     images["registry"],
                                     comp.container_name(self.spec.name, "registry-cache"),
                                     self.labels(), stop=stop)
        except (OSError, DockerException, KfboxError) as exc:
            _cache_skipped(reporter, exc)

    def _plans(self, images: dict[str, str]) -> list[comp.ContainerPlan]:
        plans = []
        if "registry" in images:
            plans.append(comp.registry_plan(self.spec, images["registry"]))
        if "tracking" in images:
            plans.append(comp.tracking_plan(self.spec, images["tracking"],
                                            self.tracking_password(),
                                            self.state.secret(TRACKING_CSRF)))
        if "jupyter" in images:
            plan = comp.jupyter_plan(self.spec, images["jupyter"], self.token())
            engine = self._rootless_engine()
            if engine is not None:
                rootless.prepare_notebook_home(engine, images["runtime"])
                extra = rootless.jupyter_settings(engine, comp.network_name(self.spec.name),
                                                  f"127.0.0.1:{self.spec.ports.registry}",
                                                  images["runtime"])
                plan.volumes |= extra["volumes"]
                plan.environment |= extra["environment"]
                plan.user = extra["user"]
                command = self.client.images.get(plan.image).attrs["Config"]["Cmd"]
                plan.command = [*command, *extra["extra_args"]]
            if "tracking" in images:
                plan.environment |= comp.tracking_client_environment(self.tracking_password())
            plans.append(plan)
        return plans

    # ---- Engine ----------------------------------------------------------------------------

    def preflight(self) -> list[Check]:
        try:
            owned = self._owned_ports()
        except (DockerException, KfboxError):  # no engine: host_checks says so, with the fix
            owned = set()
        checks = preflight.host_checks(self.spec, owned, listen_address=self.spec.lite.listen)
        if self.rootless:
            checks = [_rootless_gpu(c, self.spec.gpu) if c.name == "gpu" else c for c in checks]
            checks.append(_rootless_check())
        return checks

    @contextlib.contextmanager
    def installing_from_bundle(self, bundle: Path, reporter: Reporter) -> Iterator[Path | None]:
        """The bundle's .tar, verified before anything is used: its Docker engine packages go to
        provisioning, and once preflight passed its images are loaded (never built, never
        fetched) and the sandbox records which bundle it runs."""
        with verified_bundle(bundle, reporter) as verified:
            yield verified.debs
            # A fresh connection: the engine may have been installed from the bundle just now.
            verified.load_images(connect(), reporter)
            verified.record(self.spec.name)

    def _owned_ports(self) -> set[int]:
        """Host ports held by this sandbox's running containers (a re-`up` is fine). A stopped
        one holds nothing: its port must be free for `up` to start it again."""
        return {
            port
            for container in self.client.containers.list(
                ignore_removed=True, filters=self.filters())
            for _, port in bindings(container)
        }

    def up(self, reporter: Reporter) -> SandboxStatus:
        if self.rootless:  # first: a host that cannot run one stops here, with nothing made
            rootless.ensure_engine(self.spec, reporter)
            self._client = None
        images = self._images(reporter)
        runtime = images["runtime"]
        if "registry" in self.spec.lite.components and not self._has_volume("registry"):
            # Checked before anything of the sandbox exists: a new registry takes the
            # runtime's layers (from the cache, or pushed).
            require_space(self.client, "seeding a new registry with the ML runtime",
                          NEEDS_GIB["seed"])
        plans = self._plans(images)  # from here on the sandbox is made: its token first
        actions: dict[str, str] = {}
        seeded: registry_push.Pushed | None = None
        with reporter.step(f"Network and volumes for sandbox {self.spec.name!r}",
                           action="network"):
            self._ensure_network()
            created = {p for p in ("workspace", "models", "registry", "tracking")
                       if self._ensure_volume(p)}
        runtime_id = self.client.images.get(runtime).id
        if self.rootless:
            prefilled = "registry" in created and self._prefill_rootless(images, runtime_id,
                                                                         reporter)
        else:
            prefilled = "registry" in created and self._cache_step(
                reporter, registry_cache.prefill, runtime_id
            )
        for plan in plans:
            with reporter.step(f"Component {plan.component}",
                               action=f"component:{plan.component}") as update:
                actions[plan.component] = self._ensure_container(plan)
                update(f"{actions[plan.component]}; waiting for readiness")
                self._wait_ready(plan)
            reporter.info(
                f"{plan.component}: {actions[plan.component]}, ready at {plan.base_url()}"
            )
            if plan.component == "jupyter" and self.rootless:
                self._offer_tutorials(plan, reporter)
        if "registry" in self.spec.lite.components:
            with reporter.step("Seeding the registry with the ML runtime",
                               action="registry-seed") as update:
                seeded = self._seed_registry(runtime, update)
                if "registry" in created and not prefilled:
                    update("keeping a copy for the next sandbox")
                    self._cache_step(reporter, registry_cache.save, runtime_id)
            reporter.info(f"registry: the ML runtime's layers: {seeded.sent} sent, "
                          f"{seeded.there} already there")
        self._record_state(plans, runtime)
        status = self.status()
        status.facts["actions"] = actions
        if seeded is not None:
            status.facts["registry_seed"] = {"layers_sent": seeded.sent,
                                             "layers_there": seeded.there}
        return status

    def _offer_tutorials(self, plan: comp.ContainerPlan, reporter: Reporter) -> None:
        tutorials.offer(plan.base_url(), self.token(), rootless.TUTORIALS, "tutorials", reporter,
                        fix=f"see `docker logs {plan.name(self.spec.name)}`, then `kfbox up` "
                            "again")

    def _ensure_network(self) -> None:
        if not self.client.networks.list(
            names=[comp.network_name(self.spec.name)], filters=self.filters()
        ):
            self.client.networks.create(
                comp.network_name(self.spec.name), driver="bridge", labels=self.labels()
            )

    def _has_volume(self, purpose: str) -> bool:
        try:
            self.client.volumes.get(comp.volume_name(self.spec.name, purpose))
            return True
        except NotFound:
            return False

    def _ensure_volume(self, purpose: str) -> bool:
        """True when the volume had to be created."""
        if self._has_volume(purpose):
            return False
        name = comp.volume_name(self.spec.name, purpose)
        self.client.volumes.create(name, labels=self.labels(**{DATA_LABEL: purpose}))
        return True

    def _ensure_container(self, plan: comp.ContainerPlan) -> str:
        """Create, start, recreate or leave alone; returns which it did."""
        wanted = plan.config_hash()
        try:
            container = self.client.containers.get(plan.name(self.spec.name))
        except NotFound:
            container = None
        if container is not None and container.labels.get(CONFIG_LABEL) != wanted:
            container.remove(force=True)
            action, container = "recreated", None
        else:
            action = "created"
        if container is None:
            labels = self.labels(
                **{COMPONENT_LABEL: plan.component, ROLE_LABEL: "component", CONFIG_LABEL: wanted}
            )
            try:
                self.client.containers.run(**comp.run_kwargs(plan, self.spec.name, labels))
            except APIError as exc:
                raise KfboxError(f"cannot start {plan.component}: {exc.explanation}") from exc
            return action
        if container.status != "running":
            try:
                container.start()
            except APIError as exc:
                raise KfboxError(f"cannot start {plan.component}: {exc.explanation}") from exc
            return "started"
        return "unchanged"

    def _wait_ready(self, plan: comp.ContainerPlan) -> None:
        # Imported here for start-up time: tenacity loads tornado and asyncio when they are
        # installed, and only `up` waits for readiness.
        from tenacity import (
            RetryError,
            Retrying,
            retry_if_exception_type,
            stop_after_delay,
            wait_fixed,
        )

        try:
            for attempt in Retrying(
                stop=stop_after_delay(READY_TIMEOUT_S),
                wait=wait_fixed(0.5),
                retry=retry_if_exception_type(Exception),
            ):
                with attempt:
                    plan.probe(plan.base_url())
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            raise KfboxError(
                f"{plan.component} did not become ready at {plan.base_url()} within "
                f"{READY_TIMEOUT_S}s: {cause}",
                fix=f"see `docker logs {plan.name(self.spec.name)}`",
            ) from None

    def _cache_step(self, reporter: Reporter, action, runtime_id: str) -> bool:
        """Run a registry-cache action; the cache only saves time, so its failure is a warning.
        A rootless engine's registry never feeds the cache every sandbox reads (what its
        notebook starts can write that volume), and reads it through `_prefill_rootless`."""
        if self.rootless:
            return False
        try:
            return bool(
                action(
                    self.client,
                    comp.volume_name(self.spec.name, "registry"),
                    runtime_id,
                    ensure_base_image(reporter, self.client),
                    self.labels(),
                )
            )
        except (OSError, DockerException) as exc:
            _cache_skipped(reporter, exc)
            return False

    def _prefill_rootless(self, images: dict[str, str], runtime_id: str,
                          reporter: Reporter) -> bool:
        """A rootless sandbox's new registry, filled from the host's cache (`_images` has the
        host's engine make it when missing), and its engine told which blob each of the
        runtime's layers is: the seed's push then finds every layer there and sends none. It
        only saves time, so a failure is a warning and the push does the work."""
        runtime = images["runtime"]
        repository = runtime.rsplit(":", 1)[0]
        engine = self._rootless_engine()
        if engine is None or not registry_cache.cache_path(runtime_id).is_dir():
            return False
        with reporter.step("Registry storage from the host's cache",
                           action="registry-cache") as update:
            try:
                helper = self.client.containers.create(
                    self.base_image(reporter), ["true"], labels=self.labels(),
                    network_mode="none", volumes={
                        comp.volume_name(self.spec.name, "registry"):
                            {"bind": registry_cache.STORAGE, "mode": "rw"}})
                try:
                    with registry_cache.archive(runtime_id) as stream:
                        helper.put_archive(registry_cache.STORAGE, stream)
                finally:
                    helper.remove(force=True)
                known = record_layer_digests(
                    engine, f"127.0.0.1:{self.spec.ports.registry}/{repository}",
                    registry_cache.layers(runtime_id, repository))
                update(f"{known} layers known to the engine")
                return True
            except (OSError, ValueError, KeyError, DockerException, KfboxError) as exc:
                _cache_skipped(reporter, exc)
                # A copy cut short (a full disk) may have left a blob cut short, which the
                # registry would serve as there: the push starts from an empty volume instead.
                volume = comp.volume_name(self.spec.name, "registry")
                with contextlib.suppress(DockerException):
                    self.client.volumes.get(volume).remove(force=True)
                self._ensure_volume("registry")
                return False

    def _seed_registry(self, image: str, update) -> registry_push.Pushed:
        """Push the runtime image once, so the first journey's push sends only its own layer
        (the runtime's GB of layers are already there) and a re-`up` pushes nothing."""
        repository = f"127.0.0.1:{self.spec.ports.registry}/{image.split(':')[0]}"
        tag = image.split(":")[1]
        self.client.images.get(image).tag(repository, tag)
        return registry_push.push(self.client, self.spec.name, repository, tag,
                                  "seeding the sandbox registry", progress=update)

    def _record_state(self, plans: list[comp.ContainerPlan], runtime: str) -> None:
        # The spec itself is recorded by the CLI (config.record_spec) for every engine.
        state = {
            "updated_at": datetime.now(UTC).isoformat(),
            "components": {p.component: {"image": p.image, "url": p.base_url()} for p in plans},
            "runtime_image": runtime,
        }
        self.state.write_json(STATE_FILE, state)

    def _recorded(self) -> dict:
        """What the last `up` recorded (empty when it never finished)."""
        recorded = self.state.read_json(STATE_FILE)
        return recorded if isinstance(recorded, dict) else {}

    def _runtime_status(self) -> ComponentStatus:
        """The ML runtime image scenario builds start from: reported so a bundle names the
        exact torch/KServe stack it certified."""
        try:
            tag = self._recorded()["runtime_image"]
            image = self.client.images.get(tag)
        except (KeyError, NotFound):
            return ComponentStatus("runtime", False, "ML runtime image missing: run `kfbox up`")
        return ComponentStatus("runtime", True, "ML runtime image", "", f"{tag}@{image.id}")

    def status(self) -> SandboxStatus:
        if self.rootless:
            engine = self._rootless_engine()
            if engine is None:
                return SandboxStatus(self.spec.name, self.name, "absent")
            if not engine.answers():
                return SandboxStatus(self.spec.name, self.name, "degraded", [ComponentStatus(
                    "docker", False, f"rootless Docker engine {engine.user} stopped: "
                    "`kfbox up` starts it")], facts={"docker": "rootless"})
        containers = {
            c.labels.get(COMPONENT_LABEL): c
            for c in self.client.containers.list(
                ignore_removed=True, all=True,
                filters=self.filters(**{ROLE_LABEL: "component"}),
            )
        }
        volumes = {v.name for v in self.client.volumes.list(filters=self.filters())}
        workloads = self._kept_workloads()
        if not containers and not volumes:
            return SandboxStatus(self.spec.name, self.name, "absent", workloads=workloads)
        result = []
        for component in self.spec.lite.components:
            if component == "store":
                name = comp.volume_name(self.spec.name, "models")
                present = name in volumes
                result.append(
                    ComponentStatus(
                        "store", present, f"volume {name}" if present else "volume missing"
                    )
                )
                continue
            container = containers.get(component)
            if container is None:
                result.append(ComponentStatus(component, False, "container missing"))
                continue
            # The URL shows the address the engine really bound, so a check that every URL is
            # on loopback can fail.
            published = bindings(container)
            url = f"http://{published[0][0]}:{published[0][1]}" if published else ""
            healthy = container.status == "running" and self._answers(component, url)
            result.append(
                ComponentStatus(
                    component,
                    healthy,
                    container.status,
                    url,
                    _image_ref(container),
                )
            )
        result.append(self._runtime_status())
        state = "running" if all(c.healthy for c in result) else "degraded"
        facts = {"listen": self.spec.lite.listen}
        if self.rootless:
            facts["docker"] = "rootless"
        return SandboxStatus(self.spec.name, self.name, state, result, facts=facts,
                             workloads=workloads)

    def _kept_workloads(self) -> list[Workload]:
        """The journeys' workloads still running (a model server `kfbox test --keep` kept), each
        with the URL of its first published port; a run's finished jobs are not listed."""
        if self.rootless:  # every container of its own engine is the sandbox's: the
            # notebook's jobs and model servers carry no kfbox label (the SDK starts them)
            running = [c for c in self.client.containers.list(ignore_removed=True)
                       if c.labels.get(ROLE_LABEL) != "component"]
        else:
            running = self.client.containers.list(
                ignore_removed=True,
                filters={**self.filters(**{ROLE_LABEL: "workload"}), "status": ["running"]}
            )
        kept = []
        for container in sorted(running, key=lambda c: c.name):
            # The ports the engine chose: a model server asks for any free one, which its
            # port bindings leave blank.
            published = [
                (binding.get("HostIp") or "0.0.0.0", binding["HostPort"])
                for items in container.ports.values()
                for binding in items or []
                if binding.get("HostPort")
            ]
            url = f"http://{published[0][0]}:{published[0][1]}" if published else ""
            kept.append(Workload(container.name, container.labels.get(RUN_LABEL, ""), url))
        return kept

    def _answers(self, component: str, url: str) -> bool:
        probes = {
            "registry": lambda: comp.registry_plan(self.spec, "").probe(url),
            "jupyter": lambda: comp.jupyter_plan(self.spec, "", self.token()).probe(url),
            "tracking": lambda: comp.tracking_plan(self.spec, "", self.tracking_password(),
                                                   "").probe(url),
        }
        try:
            probes[component]()
        except Exception:
            return False
        return True

    def capabilities(self) -> Capabilities:
        spec = self.spec
        return Capabilities(
            notebook=Access(f"http://{spec.lite.address_of('jupyter')}:{spec.ports.jupyter}",
                            "token")
            if "jupyter" in spec.lite.components
            else None,
            registry=f"{spec.lite.address_of('registry')}:{spec.ports.registry}"
            if "registry" in spec.lite.components
            else "",
            model_store=f"volume {comp.volume_name(spec.name, 'models')}"
            if "store" in spec.lite.components
            else "",
            gpus=self.gpus(),
            listen=spec.lite.listen,
            tracking=Access(f"http://{spec.lite.address_of('tracking')}:{spec.ports.tracking}",
                            "basic")
            if "tracking" in spec.lite.components
            else None,
            bundle=installed.sha256 if (installed := bundle_record(spec.name)) else "",
            tutorials=tutorials.tutorial_checks(rootless.TUTORIALS) if self.rootless else [],
            boundary=rootless.BOUNDARY if self.rootless else None,
            software=self.software(),
        )

    def gpus(self) -> int:
        """GPUs a workload can request: the host's, when the engine has the nvidia runtime."""
        if self.spec.gpu == "off":
            return 0
        if not engine_has_nvidia_runtime(self.client.info().get("Runtimes", {})):
            return 0
        return detect_gpus().count

    def software(self) -> dict[str, str]:
        """What the sandbox runs: the packages in its notebook and ML runtime images, MLflow in
        its tracking server, the Kubeflow SDK and Optuna that drive training and tuning from
        the host, the engine."""
        images = self._recorded()
        labels = self.labels(**{ROLE_LABEL: "probe"})
        found: dict[str, str] = {}
        jupyter = images.get("components", {}).get("jupyter", {}).get("image")
        if jupyter:
            found |= image_versions(self.client, jupyter, ["jupyterlab", "jupyter_server"], labels)
        if images.get("runtime_image"):
            found |= image_versions(self.client, images["runtime_image"], RUNTIME_PACKAGES, labels)
        tracking = images.get("components", {}).get("tracking", {}).get("image")
        if tracking:
            found |= image_versions(self.client, tracking, ["mlflow"], labels)
        found |= installed_versions(["kubeflow", "optuna"])
        found["docker"] = self.client.version().get("Version", "")
        return found

    def login_url(self, component: str) -> str | None:
        if component == "tracking":  # basic auth: a browser logs in with the URL's user:pass
            address = listen.reach(self.spec.lite.address_of("tracking"))
            return (f"http://{TRACKING_USER}:{self.tracking_password()}@{address}:"
                    f"{self.spec.ports.tracking}/")
        if component != "jupyter":
            return None
        address = listen.reach(self.spec.lite.address_of("jupyter"))
        return f"http://{address}:{self.spec.ports.jupyter}/lab?token={self.token()}"

    def down(self, reporter: Reporter, *, keep_data: bool = False) -> list[str]:
        if self.rootless:
            return self._down_rootless(reporter, keep_data=keep_data)
        filters = self.filters()
        with reporter.step(f"Removing sandbox {self.spec.name!r}"):
            for container in self.client.containers.list(
                ignore_removed=True, all=True, filters=filters):
                container.remove(force=True)
            for network in self.client.networks.list(filters=filters):
                network.remove()
            if not keep_data:
                for volume in self.client.volumes.list(filters=filters):
                    volume.remove(force=True)
                self._untag_registry_images()
        return self.leftovers(keep_data=keep_data)

    def _down_rootless(self, reporter: Reporter, *, keep_data: bool) -> list[str]:
        """Everything of a rootless sandbox is its engine's: with its data kept the engine
        stops (its user's home holds the volumes); otherwise the engine, its user, home,
        images, volumes and cgroup go, and what the notebook started with them."""
        engine = self._rootless_engine()
        if engine is None:
            return []
        with reporter.step(f"Removing sandbox {self.spec.name!r} and its rootless Docker engine"):
            if keep_data and engine.answers():
                client = engine.client()
                for container in client.containers.list(ignore_removed=True, all=True):
                    container.remove(force=True)
            if keep_data:
                stop_rootless_docker(self.spec.name)
            else:
                remove_rootless_docker(self.spec.name)
            # What an interrupted `up` may have left on the host's engine: the throwaway
            # registry of the runtime's cache (registry_cache.build), labelled as ours.
            with contextlib.suppress(DockerException, KfboxError):
                for container in self.host_client.containers.list(
                        ignore_removed=True, all=True, filters=self.filters()):
                    container.remove(force=True)
        self._client = None
        if keep_data or find_rootless_docker(self.spec.name) is None:
            return []
        return [f"user {engine.user}"]

    def _untag_registry_images(self) -> None:
        """Drop the local tags that point into this sandbox's registry (journey builds and the
        runtime seed): with the registry's volume gone they name nothing. Shared layers stay."""
        prefix = f"127.0.0.1:{self.spec.ports.registry}/"
        for image in self.client.images.list():
            for tag in image.tags:
                if tag.startswith(prefix):
                    with contextlib.suppress(APIError):  # still used by a leftover container
                        self.client.images.remove(tag, noprune=False)

    def leftovers(self, *, keep_data: bool = False) -> list[str]:
        """Everything still labelled with this sandbox (data volumes allowed with keep_data)."""
        if self.rootless:
            engine = self._rootless_engine()
            return [] if engine is None or keep_data else [f"user {engine.user}"]
        filters = self.filters()
        left = [
            f"container {c.name}"
            for c in self.client.containers.list(ignore_removed=True, all=True, filters=filters)
        ]
        left += [f"network {n.name}" for n in self.client.networks.list(filters=filters)]
        if not keep_data:
            left += [f"volume {v.name}" for v in self.client.volumes.list(filters=filters)]
        return left

    def platform(self, run_dir: Path) -> Platform:
        # Imported here for start-up time: the platform loads the Kubeflow SDK and KServe
        # (seconds), which `kfbox status`, `up` and `down` never use.
        from kfbox.engines.lite.platform import LitePlatform

        return LitePlatform(self, run_dir)


def _rootless_check() -> Check:
    """Whether this host can run the sandbox's rootless Docker engine (before anything is made)."""
    try:
        check_host()
    except KfboxError as exc:
        return Check("rootless docker", "fail", str(exc), exc.fix or "")
    return Check("rootless docker", "pass", "rootlesskit, slirp4netns, newuidmap and "
                 "dockerd-rootless.sh present")


def _rootless_gpu(check: Check, gpu: str) -> Check:
    """A rootless sandbox's GPU check: its engine has no NVIDIA runtime (not built yet, and no
    host here could prove one), so the host's GPUs are not the sandbox's. Refused when the spec
    asks for them (gpu: on), a warning when it would take them if it could (auto)."""
    facts = detect_gpus() if gpu != "off" else None
    if facts is None or not facts.present:
        return check
    return Check("gpu", "fail" if gpu == "on" else "warn",
                 f"{facts.count} GPU(s) on this host; a rootless sandbox cannot use them yet "
                 "(its engine has no NVIDIA runtime): workloads run on CPU",
                 fix="set lite.docker: host for GPU workloads (the notebook then starts "
                     "nothing), or gpu: off")


def bindings(container) -> list[tuple[str, int]]:
    """(host address, host port) of each published port, as the engine bound them."""
    return [
        (binding.get("HostIp") or "0.0.0.0", int(binding["HostPort"]))
        for items in (container.attrs["HostConfig"].get("PortBindings") or {}).values()
        for binding in items or []
        if binding.get("HostPort")
    ]


def _image_ref(container) -> str:
    """tag@content-digest of the image a container runs, as the report records it."""
    image = container.image
    return f"{image.tags[0] if image.tags else 'untagged'}@{image.id}"


def _cache_skipped(reporter: Reporter, exc: BaseException) -> None:
    """The registry cache only saves time: its failure is one warning line, and `up` goes on."""
    reporter.warn(f"registry cache skipped: {str(exc).splitlines()[0][:160]}")
