"""The package's own ROS 2 messages, service and action: the one place the rest of the code imports them from.

The classes are the rosidl-generated ones (``w2r2_ros.msg``), with C type support, so they
publish over DDS and serialize with ``rclpy.serialization`` like any ROS message. On a robot
``colcon build`` generates them; in the development virtualenv ``scripts/build_interfaces.sh``
does (``scripts/setup.sh`` runs it). docs/INTERFACES.md describes the fields and the build.
"""
try:
    from w2r2_ros.msg import (
        GroundingCandidate,
        GroundingQuery,
        GroundingResult,
        ObjectProposal,
        ObjectProposalArray,
        SceneKeyframe,
    )
    from w2r2_ros.srv import Ground as GroundService
    from w2r2_ros.action import Ground as GroundAction
except ImportError as error:  # the generated code is not in the source tree until built
    raise ImportError(
        "w2r2_ros.msg is not generated: run scripts/build_interfaces.sh "
        f"(or scripts/setup.sh; on a robot, colcon build) [{error}]"
    ) from error

__all__ = [
    "GroundingCandidate",
    "GroundingQuery",
    "GroundingResult",
    "ObjectProposal",
    "ObjectProposalArray",
    "SceneKeyframe",
    "GroundService",
    "GroundAction",
]
