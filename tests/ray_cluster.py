"""Ray's own multi-node test cluster on this machine, as the Ray test modules start it.

The head node has no CPUs (the driver only); worker nodes are added by the caller, so every task
and actor runs on a worker node and the node it records tells which. Fast health checks make a
removed node known dead within seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MB = 1024 * 1024
NODE: dict[str, Any] = {"num_cpus": 2, "object_store_memory": 100 * MB}
FAST_HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 4}


@contextmanager
def running_cluster(workers: int = 2, node: dict[str, Any] | None = None) -> Iterator[Any]:
    """A head without CPUs plus ``workers`` nodes, with this process connected as the driver."""
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "object_store_memory": 100 * MB,
            "include_dashboard": False,
            "_system_config": FAST_HEALTH,
        },
    )
    for _ in range(workers):
        c.add_node(**(node or NODE))
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
