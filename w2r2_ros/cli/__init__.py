"""Console commands: w2r2-demo, w2r2-bringup."""
