"""``sluice kafka start|stop|status``: the local Kafka broker on its own."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from sluice.errors import LocalKafkaError
from sluice.kafka.local import (
    LocalKafka,
    LocalKafkaSettings,
    broker_status,
    stop_broker,
)
from sluice.kafka.local.cluster import (
    LocalClusterSettings,
    LocalKafkaCluster,
    client_properties,
    cluster_status,
    is_cluster,
    stop_cluster,
)

_ENVIRONMENT = """\
environment variables:
  SLUICE_KAFKA_PORT      default for --port (9092)
  SLUICE_KAFKA_DATA_DIR  default for --data-dir (default: "kafka" in sluice's user data
                         folder, e.g. ~/.local/share/sluice/kafka on Linux; "kafka-cluster"
                         beside it for --brokers N, --tls or --sasl)
  JAVA_HOME              the JDK to run Kafka with (Java 17+); otherwise `java` on PATH
"""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    kafka = commands.add_parser(
        "kafka",
        help="start, stop or inspect the local Kafka broker",
        description="A single-node Kafka broker (KRaft) on 127.0.0.1, run from a data folder, "
        "or with --brokers N / --tls / --sasl scram a replicated cluster of N nodes with the "
        "security production runs. The first start downloads the Kafka jars with Maven into "
        "the user cache folder; later starts work offline.",
        epilog=_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = kafka.add_subparsers(dest="kafka_command", metavar="ACTION", required=True)

    start = _action(
        actions,
        "start",
        "start the broker (in the background unless --foreground)",
        "Start the broker and print its bootstrap servers. It keeps running after this command "
        "returns; `sluice kafka stop` stops it. Topics survive a restart with the same data "
        "folder.",
        _start,
    )
    start.add_argument(
        "--port",
        type=_port,
        default=None,
        help="client port (default: 9092; a cluster's nodes take PORT, PORT+1...; default free "
        "ports)",
    )
    start.add_argument(
        "--brokers",
        type=_brokers,
        default=1,
        metavar="N",
        help="run a cluster of N nodes (each broker and controller) with replication factor "
        "min(3, N) and min.insync.replicas min(2, N) for new topics (default: 1)",
    )
    start.add_argument(
        "--tls",
        action="store_true",
        help="clients connect with TLS; a CA and broker certificates are made for the cluster",
    )
    start.add_argument(
        "--sasl",
        choices=("scram",),
        default=None,
        help="clients authenticate with SCRAM-SHA-512 (or -256) as user 'sluice' with a "
        "generated password, written to client.properties in the data folder",
    )
    start.add_argument(
        "--foreground",
        action="store_true",
        help="stay attached and stop the broker on Ctrl-C or SIGTERM",
    )
    _action(
        actions,
        "stop",
        "stop the broker",
        "Stop the broker running from the data folder (SIGTERM, then SIGKILL after 15 s). "
        "Does nothing when none runs.",
        _stop,
    )
    _action(
        actions,
        "status",
        "tell whether the broker runs",
        "Print whether a broker runs from the data folder, with its pid and bootstrap servers. "
        "Exit status: 0 running, 3 not running.",
        _status,
    )


def _action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    description: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    parser = actions.add_parser(
        name,
        help=summary,
        description=description,
        epilog=_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, metavar="DIR", help="the broker's data folder"
    )
    parser.set_defaults(handler=_guarded(handler))
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return port


def _brokers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= 9:
        raise argparse.ArgumentTypeError(f"not a number of brokers from 1 to 9: {text!r}")
    return count


def _guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except LocalKafkaError as exc:
            first, _, detail = str(exc).partition("\n")
            print(f"error: {first}", file=sys.stderr)
            if detail:
                print(detail, file=sys.stderr)
            return 1

    return run


def _settings(args: argparse.Namespace) -> LocalKafkaSettings:
    """Flags, then environment variables, then the library's defaults."""
    environ = os.environ
    port: int | None = getattr(args, "port", None)
    if port is None and environ.get("SLUICE_KAFKA_PORT"):
        try:
            port = _port(environ["SLUICE_KAFKA_PORT"])
        except argparse.ArgumentTypeError as exc:
            raise LocalKafkaError(f"SLUICE_KAFKA_PORT: {exc}") from None
    data_dir: Path | None = args.data_dir
    if data_dir is None and environ.get("SLUICE_KAFKA_DATA_DIR"):
        data_dir = Path(environ["SLUICE_KAFKA_DATA_DIR"])
    java_home = environ.get("JAVA_HOME")
    return LocalKafkaSettings(
        port=9092 if port is None else port,
        data_dir=None if data_dir is None else data_dir.expanduser().resolve(),
        java_home=Path(java_home) if java_home else None,
    )


def _wants_cluster(args: argparse.Namespace) -> bool:
    return bool(args.brokers > 1 or args.tls or args.sasl)


def _cluster_settings(args: argparse.Namespace) -> LocalClusterSettings:
    base = _settings(args)
    return LocalClusterSettings(
        brokers=args.brokers,
        tls=args.tls,
        sasl=args.sasl,
        port=0 if args.port is None else args.port,
        data_dir=None if args.data_dir is None else args.data_dir.expanduser().resolve(),
        base=base,
    )


def _start(args: argparse.Namespace) -> int:
    if _wants_cluster(args):
        return asyncio.run(_start_cluster(_cluster_settings(args), foreground=args.foreground))
    settings = _settings(args)
    if args.foreground:
        return asyncio.run(_foreground(settings))
    asyncio.run(_background(settings))
    return 0


async def _background(settings: LocalKafkaSettings) -> None:
    console = Console(stderr=True)
    with console.status("starting the local Kafka broker") as spinner:
        kafka = LocalKafka(settings, progress=spinner.update)
        await kafka.start(detach=True)
    print(f"Kafka is running at {kafka.bootstrap_servers} (pid {kafka.pid})")
    print(f"log: {kafka.log_file}")
    print("stop it with: sluice kafka stop" + _data_dir_flag(settings))


async def _foreground(settings: LocalKafkaSettings) -> int:
    console = Console(stderr=True)
    with console.status("starting the local Kafka broker") as spinner:
        kafka = LocalKafka(settings, progress=spinner.update)
        await kafka.start()
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        print(f"Kafka is running at {kafka.bootstrap_servers} (Ctrl-C to stop)", flush=True)
        print(f"log: {kafka.log_file}", flush=True)
        await kafka.wait()
        print("error: the Kafka broker exited; see its log", file=sys.stderr)
        return 1
    except asyncio.CancelledError:  # Ctrl-C or SIGTERM: a requested stop, not a failure
        return 0
    finally:
        with console.status("stopping the local Kafka broker"):
            await kafka.stop()


async def _start_cluster(settings: LocalClusterSettings, *, foreground: bool) -> int:
    console = Console(stderr=True)
    with console.status(f"starting a local Kafka cluster of {settings.brokers}") as spinner:
        cluster = LocalKafkaCluster(settings, progress=spinner.update)
        await cluster.start(detach=not foreground)
    data_dir = settings.resolved_data_dir()
    print(f"Kafka cluster of {settings.brokers} running at {cluster.bootstrap_servers}")
    print(f"pids: {', '.join(str(pid) for pid in cluster.pids.values())}")
    print(f"client properties: {data_dir / 'client.properties'}")
    print("instance.yaml (the password goes into secrets.yaml as secret kafka, key password;")
    print("it is in the client properties file):")
    print("  instance:\n    streamingCluster:\n      type: kafka\n      configuration:")
    print("        admin:")
    for key, value in cluster.client_properties.items():
        shown = value
        if key == "sasl.jaas.config":
            shown = value.split('password="', 1)[0] + 'password="${secrets.kafka.password}";'
        print(f"          {key}: {json.dumps(shown)}")
    if not foreground:
        print("stop it with: sluice kafka stop" + _data_dir_flag(settings.base, settings.data_dir))
        return 0
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        print("(Ctrl-C to stop)", flush=True)
        await cluster.wait()
        print("error: a Kafka node exited; see its log in the data folder", file=sys.stderr)
        return 1
    except asyncio.CancelledError:
        return 0
    finally:
        with console.status("stopping the local Kafka cluster"):
            await cluster.stop()


def _data_dirs(args: argparse.Namespace) -> list[Path]:
    """The folder named, or the single broker's and the cluster's default folders."""
    settings = _settings(args)
    if settings.data_dir is not None:
        return [settings.resolved_data_dir()]
    single = settings.resolved_data_dir()
    return [single, LocalClusterSettings(base=settings).resolved_data_dir()]


def _stop(args: argparse.Namespace) -> int:
    settings = _settings(args)
    for data_dir in _data_dirs(args):
        if is_cluster(data_dir):
            nodes = asyncio.run(stop_cluster(data_dir, grace=settings.stop_grace))
            if nodes:
                pids = ", ".join(str(node.pid) for node in nodes)
                print(f"stopped the Kafka cluster in {data_dir} (pids {pids})")
            else:
                print(f"no Kafka cluster is running from {data_dir}")
            continue
        stopped = asyncio.run(stop_broker(data_dir, grace=settings.stop_grace))
        if stopped.running:
            print(f"stopped the Kafka broker at {stopped.bootstrap_servers} (pid {stopped.pid})")
        elif settings.data_dir is not None or data_dir == _data_dirs(args)[0]:
            print(f"no Kafka broker is running from {data_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    code = 3
    for data_dir in _data_dirs(args):
        if is_cluster(data_dir):
            nodes = cluster_status(data_dir)
            if not nodes:
                print(f"cluster not running (data dir {data_dir})")
                continue
            code = 0
            servers = client_properties(data_dir).get("bootstrap.servers", "")
            print(f"cluster running: {len(nodes)} node(s) at {servers}")
            print(f"pids: {', '.join(str(node.pid) for node in nodes)}")
            print(f"data dir: {data_dir}")
            print(f"client properties: {data_dir / 'client.properties'}")
            continue
        if _single_status(data_dir) == 0:
            code = 0
    return code


def _single_status(data_dir: Path) -> int:
    status = broker_status(data_dir)
    if not status.running:
        print(f"not running (data dir {data_dir})")
        return 3
    print(f"running: {status.bootstrap_servers} (pid {status.pid})")
    print(f"data dir: {data_dir}")
    print(f"log: {status.log_file}")
    return 0


def _data_dir_flag(settings: LocalKafkaSettings, data_dir: Path | None = None) -> str:
    chosen = data_dir or settings.data_dir
    return "" if chosen is None else f" --data-dir {shlex.quote(str(chosen))}"
