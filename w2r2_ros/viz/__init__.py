"""Offline pictures of what RViz would show (matplotlib, no display)."""
