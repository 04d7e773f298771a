"""Test isolation: every pytest process talks DDS on its own domain id, on loopback only."""
import os

# Set before anything imports rclpy, so that concurrent test runs never hear each other.
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402  (after the environment above is set)

# Two cores shared with DDS threads: one torch thread avoids threads waiting on each other (docs/TRAINING.md).
torch.set_num_threads(1)
