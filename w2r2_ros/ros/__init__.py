"""ROS 2 glue: message conversions and node wiring. The only package here that imports rclpy."""
