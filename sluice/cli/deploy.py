"""``sluice manifests``, ``sluice deploy``, ``sluice delete`` and ``sluice image``: an application
on Kubernetes with Knative (docs/knative.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from sluice.application import Application, plan_application
from sluice.cli.app import app_arguments, load
from sluice.errors import SluiceError

DOCKERFILE = """\
# Written by `sluice image`: the application's code on top of the Sluice image.
FROM {base}
COPY python/ /app/python/
{requirements}{camel}"""
ENVIRONMENT = """\
# python/requirements.txt: the application's own Python environment, built as `sluice run` builds
# it (uv; Sluice's worker libraries and push mode's, none of the CLI's), where the Knative
# manifests start the workers of the Python agents. No uv cache is kept in the image; bytecode is
# compiled now, as the image is read-only to the workers.
USER root
RUN UV_NO_CACHE=1 UV_COMPILE_BYTECODE=1 {command}
USER 1000
"""
CAMEL = """\
# camel-source: the Camel jars (core set + configuration.yaml dependencies) resolved now, so
# the workers start without Maven or network (SLUICE_CAMEL_CACHE_DIR is set by the base image).
COPY . /tmp/app/
RUN python -m workers.camel /tmp/app && rm -rf /tmp/app
"""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    manifests = commands.add_parser(
        "manifests",
        help="print the Kubernetes objects that run the application on Knative",
        description="Generate the Secrets (the application's; the Kafka credentials on a secured "
        "Kafka), ConfigMap, KafkaTopics (--topics strimzi), PersistentVolumeClaims, KafkaSinks, "
        "Knative Services and KafkaSources of the application (nothing is contacted).",
    )
    app_arguments(manifests)
    manifests.add_argument("-n", "--namespace", help="namespace (default: from instance.yaml)")
    _topic_arguments(manifests)
    manifests.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    manifests.set_defaults(handler=_manifests)

    deploy = commands.add_parser(
        "deploy",
        help="create the topics and apply the application's objects to a cluster",
        description="Create the application's topics (Kafka admin client; with --topics strimzi "
        "KafkaTopic objects instead) and its assets (the "
        "tables, keyspaces... of assets with creation-mode create-if-not-exists, from here, as "
        "sluice run does), check Knative's config-features when disks are used, then "
        "server-side apply every object (field manager sluice). Applying again changes "
        "nothing; a changed application updates only what changed.",
    )
    app_arguments(deploy)
    _cluster_arguments(deploy)
    _topic_arguments(deploy)
    deploy.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would change (a diff against the live objects); change nothing",
    )
    deploy.add_argument("--wait", action="store_true", help="wait until every object is ready")
    deploy.add_argument(
        "--timeout", type=float, default=300, help="seconds --wait waits (default: 300)"
    )
    deploy.add_argument(
        "--skip-topics",
        action="store_true",
        help="do not create topics (when Kafka is not reachable from here)",
    )
    deploy.add_argument(
        "--skip-assets",
        action="store_true",
        help="do not create assets (when their databases are not reachable from here)",
    )
    deploy.set_defaults(handler=_deploy)

    delete = commands.add_parser(
        "delete",
        help="delete the application's objects from a cluster (by label)",
        description="Delete every object labelled sluice.dev/application=<app> in the "
        "namespace. Topics and the namespace stay; assets too, unless --assets is given.",
    )
    delete.add_argument("app", metavar="APP", help="the application id (or its folder)")
    _cluster_arguments(delete)
    delete.add_argument(
        "--assets",
        action="store_true",
        help="also delete the assets with deletion-mode: delete (their delete statements run "
        "from here; APP must be the application folder)",
    )
    delete.add_argument("-i", "--instance", metavar="FILE", help="instance.yaml (with --assets)")
    delete.add_argument("-s", "--secrets", metavar="FILE", help="secrets.yaml (with --assets)")
    delete.add_argument("--app-id", metavar="NAME", help="application id (with --assets)")
    delete.set_defaults(handler=_delete)

    image = commands.add_parser(
        "image",
        help="write the Dockerfile of the application's image",
        description="Write APP_DIR/Dockerfile: the Sluice image with the application's python/ "
        "folder and, when it has python/requirements.txt, the application's own Python "
        "environment built from it; print the build command. Name the result in "
        "instance.yaml: computeCluster.configuration.image.",
    )
    image.add_argument("app", metavar="APP_DIR", type=Path)
    image.add_argument("-t", "--tag", help="image name (default: <folder>:latest)")
    image.add_argument("--from", dest="base", help="the Sluice image (default: sluice:<version>)")
    image.set_defaults(handler=_image)


def _cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", help="namespace (default: from instance.yaml)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")


def _topic_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--topics",
        choices=("admin", "strimzi"),
        help="who creates the topics: the Kafka admin client from here (admin) or Strimzi's "
        "Topic Operator from KafkaTopic objects (strimzi) (default: computeCluster.configuration"
        ".topics, else admin)",
    )
    parser.add_argument(
        "--strimzi-cluster",
        metavar="NAME",
        help="the Strimzi Kafka cluster of the KafkaTopic objects (their strimzi.io/cluster "
        "label; default: computeCluster.configuration.strimziCluster)",
    )


def _load(args: argparse.Namespace) -> tuple[Application, list[dict[str, Any]]] | None:
    """The application and its objects; None after printing why not."""
    from knative import KnativeError, build_manifests, read_app_files, settings_from_instance

    app = load(args)
    if app is None:
        return None
    try:
        settings = settings_from_instance(
            app.instance,
            namespace=args.namespace,
            topics=args.topics,
            strimzi_cluster=args.strimzi_cluster,
        )
        files = read_app_files(
            args.app, instance=args.instance, secrets=args.secrets, environ=dict(os.environ)
        )
        return app, build_manifests(plan_application(app), app, files, settings)
    except KnativeError as error:
        print(f"error: {error}", file=sys.stderr)
        return None


def _manifests(args: argparse.Namespace) -> int:
    from knative import to_yaml

    loaded = _load(args)
    if loaded is None:
        return 1
    _, objects = loaded
    if args.output == "json":
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2))
    else:
        print(to_yaml(objects), end="")
    return 0


def _api(args: argparse.Namespace) -> Any:
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException

    config: Any = kube_config  # untyped upstream

    try:
        if (
            args.kubeconfig
            or os.environ.get("KUBECONFIG")
            or Path("~/.kube/config").expanduser().exists()
        ):
            return config.new_client_from_config(config_file=args.kubeconfig, context=args.context)
        config.load_incluster_config()
        from kubernetes.client import ApiClient

        return ApiClient()
    except (ConfigException, OSError) as error:
        raise SluiceError(f"cannot reach the cluster: {error}") from None


def _deploy(args: argparse.Namespace) -> int:
    console = Console(stderr=True, soft_wrap=True)
    loaded = _load(args)
    if loaded is None:
        return 1
    app, objects = loaded
    try:
        return _deploy_objects(args, console, app, objects)
    except SluiceError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False)
        return 1


def _deploy_objects(
    args: argparse.Namespace, console: Console, app: Application, objects: list[dict[str, Any]]
) -> int:
    from knative import check_features, requires_persistent_volumes
    from knative.cluster import apply_objects, ensure_namespace, features_data

    namespace = objects[0]["metadata"]["namespace"]
    with _api(args) as api:
        if requires_persistent_volumes(objects):
            check_features(features_data(api))
        strimzi = any(o["kind"] == "KafkaTopic" for o in objects)
        if not args.skip_topics and not args.dry_run and not strimzi:
            _create_topics(app, console)
        if not args.skip_assets and not args.dry_run:
            _assets(app, console, create=True)
        new_namespace = ensure_namespace(api, namespace, dry_run=args.dry_run)
        if new_namespace and args.dry_run:
            console.print(
                f"namespace {namespace}: would be created; the objects below are not checked "
                "by the cluster (it checks none in a namespace that does not exist yet)",
                highlight=False,
            )
        elif new_namespace:
            console.print(f"namespace {namespace}: created", highlight=False)

        def report(change: Any) -> None:
            console.print(f"{change.title}: {change.action}", highlight=False)
            if args.dry_run:
                for line in change.diff:
                    print(line)

        verb = "would be applied" if args.dry_run else "applied"
        with console.status(f"applying {len(objects)} objects to namespace {namespace}"):
            changes = apply_objects(
                api, objects, dry_run=args.dry_run, new_namespace=new_namespace, progress=report
            )
        counts = {a: sum(c.action == a for c in changes) for a in ("created", "configured")}
        console.print(
            f"{app.name}: {len(changes)} objects {verb} in {namespace} "
            f"({counts['created']} created, {counts['configured']} configured, "
            f"{len(changes) - sum(counts.values())} unchanged)",
            highlight=False,
        )
        if args.wait and not args.dry_run:
            return _wait(api, objects, args.timeout, console)
    return 0


def _create_topics(app: Application, console: Console) -> None:
    from sluice.kafka import KafkaSettings
    from sluice.kafka.admin import ensure_topics

    bootstrap = app.instance.bootstrap_servers
    if not bootstrap:
        raise SluiceError(
            "instance.yaml names no Kafka (streamingCluster.configuration.admin."
            "bootstrap.servers): the topics cannot be created (or pass --skip-topics)"
        )
    plan = plan_application(app)
    with console.status(f"creating {len(plan.topics)} topics on {bootstrap}"):
        kafka = KafkaSettings(bootstrap, app.instance.kafka_client_options)
        created = asyncio.run(ensure_topics(kafka, plan.topics))
    console.print(f"topics: {len(created)} created, {len(plan.topics)} in all", highlight=False)


def _assets(app: Application, console: Console, *, create: bool) -> None:
    """Create the assets to create (or delete those to delete) from this process, with the code
    ``sluice run`` uses; an :class:`~sluice.local.asset_errors.AssetError` (a SluiceError)
    stops the command before any object is applied (or deleted)."""
    if not app.assets:
        return
    from sluice.local.assets import create_assets, delete_assets

    verb = "creating" if create else "deleting"
    with console.status(f"{verb} the assets of {app.name}"):
        done = asyncio.run(create_assets(app) if create else delete_assets(app))
    for line in done:
        console.print(f"asset {line}", highlight=False)


def _wait(api: Any, objects: list[dict[str, Any]], timeout: float, console: Console) -> int:
    from rich.progress import BarColumn, Progress, TextColumn

    from knative.cluster import readiness

    deadline = time.monotonic() + timeout
    columns = (TextColumn("waiting for readiness"), BarColumn(), TextColumn("{task.completed}"))
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("ready", total=len(objects))
        while True:
            states = readiness(api, objects)
            done = sum(ready for ready, _ in states.values())
            progress.update(task, completed=done)
            if done == len(objects):
                console.print(f"all {done} objects are ready")
                return 0
            if time.monotonic() >= deadline:
                break
            time.sleep(2)
    waiting = [f"{name} ({why})" for name, (ready, why) in sorted(states.items()) if not ready]
    console.print(
        f"[red]error:[/red] not ready after {timeout:g} s: " + "; ".join(waiting), highlight=False
    )
    return 1


def _delete(args: argparse.Namespace) -> int:
    from knative.cluster import delete_application

    console = Console(stderr=True, soft_wrap=True)
    name = Path(args.app).name if Path(args.app).is_dir() else args.app
    namespace = args.namespace or "default"
    app: Application | None = None
    if args.assets:
        if not Path(args.app).is_dir():
            console.print(
                f"[red]error:[/red] --assets needs the application folder, not {args.app!r}: "
                "its assets and datasources are read from it",
                highlight=False,
            )
            return 1
        app = load(args)
        if app is None:
            return 1
        name = app.name
    try:
        with _api(args) as api:
            deleted = delete_application(api, name, namespace)
        for title in deleted:
            console.print(f"{title}: deleted", highlight=False)
        console.print(f"{name}: {len(deleted)} objects deleted from {namespace}", highlight=False)
        if app is not None:  # after the workers are gone: nothing writes to them any more
            _assets(app, console, create=False)
    except SluiceError as error:
        console.print(f"[red]error:[/red] {error}", highlight=False)
        return 1
    return 0


def _uses_camel(app_dir: Path) -> bool:
    """Whether a pipeline file of ``app_dir`` has a camel-source agent (read as plain YAML: the
    image is built without instance or secrets)."""
    import yaml

    for path in sorted(app_dir.glob("*.yaml")):
        try:
            document = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        pipeline = document.get("pipeline") if isinstance(document, dict) else None
        if isinstance(pipeline, list) and any(
            isinstance(agent, dict) and agent.get("type") == "camel-source" for agent in pipeline
        ):
            return True
    return False


def environment_command(app_dir: str, into: str) -> str:
    """The command the image runs to build the application's environment at ``into``."""
    return f"python -m sluice.environments {app_dir} --into {into} --push"


def _image(args: argparse.Namespace) -> int:
    from knative.pods import APP_DIR, APP_ENV_DIR
    from sluice import __version__
    from sluice.environments import requirements_file

    app_dir: Path = args.app
    if not (app_dir / "python").is_dir():
        print(
            f"error: {app_dir} has no python/ folder: nothing to add to the image", file=sys.stderr
        )
        return 1
    camel = _uses_camel(app_dir)
    base = args.base or f"sluice{'-camel' if camel else ''}:{__version__}"
    requirements = ""
    if requirements_file(app_dir) is not None:
        requirements = ENVIRONMENT.format(command=environment_command(APP_DIR, APP_ENV_DIR))
    dockerfile = app_dir / "Dockerfile"
    dockerfile.write_text(
        DOCKERFILE.format(base=base, requirements=requirements, camel=CAMEL if camel else "")
    )
    tag = args.tag or f"{app_dir.resolve().name}:latest"
    print(f"wrote {dockerfile}")
    print(f"build it with:  docker build -t {tag} {app_dir}")
    print(f"then set computeCluster.configuration.image: {tag} in instance.yaml")
    return 0
