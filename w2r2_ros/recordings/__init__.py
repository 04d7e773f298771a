"""Recordings as robots make them: reading rosbag2 files (``bag_reader``; needs ``rosbags``, not rclpy)."""
