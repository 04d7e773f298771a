"""Samples too large for the DDS transport: said out loud instead of lost in silence.

Measured here (issue 16, finding 10; docs/RELIABILITY.md, "Transport"): with Fast DDS's
default transports, a 2,000,000-point PointCloud2 with rgb (32 MB) published by one process
never reaches a reader in another, and nothing is logged on either side; a 3.2 MB cloud
arrived once in three. With ``config/fastdds_large_messages.xml`` in both processes a
reliable reader got all three 32 MB clouds (a best-effort one, one of three).

Three places can see it: the reader gets a ``message_lost`` event from the middleware (not the
size; it undercounts, and once stayed silent for a whole burst), the reader sees the jump in the
publisher's sequence numbers at the next message that arrives (``sequence_gaps.py``), and a
publisher of ours knows the size of what it sends. All warn with :func:`large_sample_advice`.
"""
from __future__ import annotations

# Above this, Fast DDS's default transports fragment a sample over UDP and lose it under load.
LARGE_SAMPLE_BYTES = 4 * 2**20
PROFILE = "config/fastdds_large_messages.xml"


def large_sample_advice() -> str:
    return (f"samples over ~{LARGE_SAMPLE_BYTES / 2**20:.0f} MB are lost by Fast DDS's default transports: set "
            f"FASTDDS_DEFAULT_PROFILES_FILE=<w2r2_ros share>/{PROFILE} in every process that publishes or "
            f"subscribes them, with reliable QoS (docs/RELIABILITY.md)")


def large_sample_warning(type_name: str, topic: str, n_bytes: int) -> str | None:
    """A warning for a sample of ``n_bytes`` about to be published on ``topic``, or None if it is small."""
    if n_bytes <= LARGE_SAMPLE_BYTES:
        return None
    return f"publishing a {n_bytes / 1e6:.1f} MB {type_name} on {topic}: {large_sample_advice()}"
