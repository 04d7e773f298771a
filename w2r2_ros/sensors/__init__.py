"""Sensor message fields <-> numpy and geometry types, without rclpy.

An rclpy message (the nodes) and a ``rosbags`` message (bag reading, training)
of the same ROS type carry the same field names, so one decoder reads both:
these modules only read attributes and never import either message library.
``w2r2_ros.ros.conversions`` adds what needs the rclpy types (building messages).
"""
