"""Where a model pool puts its actors (pure planning over ``ray.nodes()``-style records; no Ray needed)."""

from __future__ import annotations

from unbounded.batch.pool import plan_actors


def nodes(*cpus: float) -> list[dict[str, object]]:
    return [{"NodeID": f"n{i}", "Alive": True, "Resources": {"CPU": c} if c else {}} for i, c in enumerate(cpus)]


def test_a_local_model_gets_one_actor_per_node_on_all_its_cores() -> None:
    assert plan_actors(nodes(0, 16, 4), local=True, actors_per_node=None, cpus=None) == [("n1", 16.0), ("n2", 4.0)]


def test_a_local_model_can_share_a_node_between_actors() -> None:
    assert plan_actors(nodes(8), local=True, actors_per_node=2, cpus=None) == [("n0", 4.0), ("n0", 4.0)]


def test_other_models_get_one_cpu_actors_as_many_as_fit() -> None:
    assert plan_actors(nodes(0, 2, 3), local=False, actors_per_node=None, cpus=None) == [
        ("n1", 1.0),
        ("n1", 1.0),
        ("n2", 1.0),
        ("n2", 1.0),
        ("n2", 1.0),
    ]


def test_given_cpus_skip_nodes_too_small_and_fix_the_count() -> None:
    assert plan_actors(nodes(1, 4, 6), local=True, actors_per_node=None, cpus=3) == [("n1", 3), ("n2", 3), ("n2", 3)]
    assert plan_actors(nodes(1, 4), local=False, actors_per_node=1, cpus=2) == [("n1", 2)]
    assert plan_actors(nodes(0, 2), local=False, actors_per_node=None, cpus=0.5) == [("n1", 0.5)] * 4


def test_zero_cpu_actors_go_on_every_node() -> None:
    assert plan_actors(nodes(0, 2), local=False, actors_per_node=None, cpus=0) == [("n0", 0), ("n1", 0)]
