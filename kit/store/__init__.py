"""Where outputs go and how they are written: output paths, atomic writes, checkpoints that carry their config."""
