"""Scene memory core (no rclpy): keyframes, timestamp sync, voxel fusion, object proposals."""
