"""w2r2_ros: language-driven 3D grounding for ROS 2 (W2R2, arXiv 2510.17034).

Data flows one way: sensors -> scene memory -> model -> result -> markers.
Algorithms live in plain modules (``geometry``, ``sim``, ``scene``, ``model``,
``viz``) that import no rclpy; ROS glue lives in ``w2r2_ros.ros``.
"""
