"""Process-wide basics every layer may use: the user-facing errors and the runtime settings (device, seeds, threads)."""
