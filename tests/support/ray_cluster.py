"""A real multi-node Ray cluster on loopback, for the cluster tests and the cluster benchmark.

Every node binds 127.0.0.1 and nothing is sent anywhere else:
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes Ray advertise the loopback address
(by default it finds the machine's network address by opening a socket
towards a public one), and must be set before Ray is imported. Ports are
chosen outside Ray's worker-port range (10002–19999), and Ray's files go into
a temporary folder of the cluster's own, short enough for its socket paths.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

LOOPBACK = "127.0.0.1"
_WORKER_PORTS = range(10002, 20000)  # Ray's default range for worker processes


def ray_port() -> int:
    """A free port on loopback that Ray will not also hand to a worker."""
    while True:
        with socket.socket() as probe:
            probe.bind((LOOPBACK, 0))
            port = probe.getsockname()[1]
        if port not in _WORKER_PORTS:
            return port


@contextlib.contextmanager
def loopback_environment() -> Iterator[str]:
    """Set the environment Ray must start in here; yield Ray's temporary folder; restore and remove it."""
    temp_dir = tempfile.mkdtemp(prefix="ray-")
    names = ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_USAGE_STATS_ENABLED", "RAY_TMPDIR", "RAY_ADDRESS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0", RAY_TMPDIR=temp_dir)
    os.environ.pop("RAY_ADDRESS", None)
    try:
        from ray._private import ray_constants

        if ray_constants.ENABLE_RAY_CLUSTER:
            raise RuntimeError("Ray was imported before RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 was set; it would advertise a non-loopback address")
        yield temp_dir
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(temp_dir, ignore_errors=True)


@contextlib.contextmanager
def loopback_cluster(nodes: int = 2, cpus_per_node: int = 1):
    """Start a head and `nodes - 1` worker nodes (separate raylets) on 127.0.0.1; yield the `ray.cluster_utils.Cluster`.

    Nothing here calls ray.init: the code under test joins the cluster through its address.
    """
    with loopback_environment():
        import ray
        from ray.cluster_utils import Cluster

        head = {"num_cpus": cpus_per_node, "node_ip_address": LOOPBACK, "include_dashboard": False, "gcs_server_port": ray_port()}
        cluster = Cluster(initialize_head=True, head_node_args=head)
        try:
            for _ in range(nodes - 1):
                add_worker_node(cluster, cpus_per_node)
            yield cluster
        finally:
            ray.shutdown()
            cluster.shutdown()


def add_worker_node(cluster, cpus: int = 1):
    return cluster.add_node(num_cpus=cpus, node_ip_address=LOOPBACK)


def worker_node_params(gcs_address: str, cpus: int = 1):
    """What `Cluster.add_node` gives a worker node, for one started in a process of its own."""
    from ray._private.parameter import RayParams

    return RayParams(
        gcs_address=gcs_address, node_ip_address=LOOPBACK, num_cpus=cpus, num_gpus=0, object_store_memory=150 * 2**20,
        min_worker_port=0, max_worker_port=0, node_manager_port=0, include_log_monitor=False,
    )


def sockets_off_loopback(root_pid: int) -> list[str]:
    """Sockets of `root_pid` and its descendants (the nodes' processes, their workers) bound or connected off loopback.

    A snapshot of /proc: listening sockets must be bound to loopback, and
    connected ones must have a loopback peer.
    """
    pids = _descendants(root_pid) | {root_pid}
    inodes = {}
    for pid in pids:
        try:
            for fd in os.scandir(f"/proc/{pid}/fd"):
                target = os.readlink(fd.path)
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue  # ended meanwhile
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = _address(fields[1]), _address(fields[2]), fields[9]
            if inode not in inodes:
                continue
            if not all(address.is_loopback or address.is_unspecified for address in (local, remote)):
                found.append(f"{table} {fields[1]} -> {fields[2]} (process {inodes[inode]})")
            elif local.is_unspecified and remote.is_unspecified and table.startswith("tcp"):
                found.append(f"{table} listening on every interface: {fields[1]} (process {inodes[inode]})")
    return found


def _address(field: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """/proc/net's hex address (32-bit words in host byte order), without the port; IPv4-mapped IPv6 as IPv4."""
    raw = bytes.fromhex(field.split(":")[0])
    host_order = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(host_order)
    return address.ipv4_mapped or address if isinstance(address, ipaddress.IPv6Address) else address


def _descendants(root_pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = set(), [root_pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def main(gcs_address: str) -> None:
    """`python -m tests.support.ray_cluster GCS_ADDRESS`: run one worker node in this process until SIGTERM.

    A node started this way can be given its own view of the file system
    (`unshare --mount`), as a machine without the shared folder has.
    """
    import signal
    import sys

    from ray._private.node import Node

    node = Node(worker_node_params(gcs_address), head=False, shutdown_at_exit=True, spawn_reaper=True)
    print("ready", flush=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # after the start: children keep the default
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    node.kill_all_processes(check_alive=False, allow_graceful=True, wait=True)
    sys.exit(0)


if __name__ == "__main__":
    import sys

    main(sys.argv[1])
