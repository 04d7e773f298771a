"""Lifecycle helpers shared by the two nodes: a transition step that logs its failure, and bring-up to active.

rclpy turns an exception inside a transition callback into ERROR without a
word; ``lifecycle_step`` logs the exception (one line naming the transition)
and returns FAILURE, so the node stays in its previous state and says why.
"""
from __future__ import annotations

from typing import Callable

from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn


class LifecycleError(RuntimeError):
    """A transition the node refused; the message names the node and the transition."""


def lifecycle_step(node: LifecycleNode, transition: str, *steps: Callable[[], None]) -> TransitionCallbackReturn:
    """Run ``steps`` in order as the body of ``transition``; an exception is logged and reported as FAILURE."""
    try:
        for step in steps:
            step()
    except Exception as error:  # the node stays in its previous state; the log says why
        node.get_logger().error(f"{transition} failed: {error}")
        return TransitionCallbackReturn.FAILURE
    node.get_logger().info(f"{transition}: done")
    return TransitionCallbackReturn.SUCCESS


def bring_up(node: LifecycleNode) -> None:
    """Configure and activate ``node`` in-process (what a lifecycle manager does over the services)."""
    for name, trigger in (("configure", node.trigger_configure), ("activate", node.trigger_activate)):
        if trigger() != TransitionCallbackReturn.SUCCESS:
            raise LifecycleError(f"{node.get_name()}: {name} failed (see the log above)")
