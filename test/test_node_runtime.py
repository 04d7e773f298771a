"""NodeRuntime: the context (and with it the DDS participant) goes down even when a node's destroy fails."""
from __future__ import annotations

import pytest
from rclpy.node import Node

from w2r2_ros.ros.node_runtime import NodeRuntime


class BrokenOnDestroy(Node):
    def destroy_node(self) -> None:
        super().destroy_node()
        raise RuntimeError("destroy failed")


def test_a_failing_destroy_still_shuts_the_context_down():
    runtime = NodeRuntime().start()
    runtime.add(Node("kept", context=runtime.context))
    runtime.add(BrokenOnDestroy("broken", context=runtime.context))
    with pytest.raises(RuntimeError, match="destroy failed"):
        runtime.shutdown()
    assert not runtime.context.ok()
