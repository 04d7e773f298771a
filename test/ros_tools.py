"""What the ros2 CLI does, as a test node: lifecycle transitions, parameter get/set, service calls over DDS.

Shared by test_node_lifecycle.py and test_bringup_params.py.
"""
from __future__ import annotations

from typing import Any

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter, parameter_value_to_python

from w2r2_ros.ros.node_runtime import NodeRuntime

TIMEOUT_S = 20.0


class Manager(Node):
    """Calls a node's standard services the way the ros2 CLI does; every call waits for its answer."""

    def __init__(self, runtime: NodeRuntime) -> None:
        super().__init__("test_manager", context=runtime.context)
        self.runtime = runtime

    def call(self, srv_type, name: str, request):
        client = self.create_client(srv_type, name)
        try:
            assert client.wait_for_service(timeout_sec=TIMEOUT_S), f"no service {name}"
            future = client.call_async(request)
            assert self.runtime.wait_until(future.done, TIMEOUT_S), f"no answer from {name}"
            return future.result()
        finally:
            self.destroy_client(client)

    def transition(self, node: str, transition_id: int) -> bool:
        return self.call(ChangeState, f"{node}/change_state", ChangeState.Request(transition=Transition(id=transition_id))).success

    def state(self, node: str) -> str:
        return self.call(GetState, f"{node}/get_state", GetState.Request()).current_state.label

    def param_set(self, node: str, name: str, value) -> tuple[bool, str]:
        """`ros2 param set`: (successful, reason)."""
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        (result,) = self.call(SetParameters, f"{node}/set_parameters", request).results
        return result.successful, result.reason

    def param_get(self, node: str, name: str) -> Any:
        """`ros2 param get`."""
        (value,) = self.call(GetParameters, f"{node}/get_parameters", GetParameters.Request(names=[name])).values
        return parameter_value_to_python(value)
