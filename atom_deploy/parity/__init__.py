"""Module-by-module parity: eager fp32, eager int8 and every exported backend, same inputs."""
