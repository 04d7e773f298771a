"""The W2R2 grounding model (no rclpy): What (2D) and Where (3D) streams fused by a transformer."""
