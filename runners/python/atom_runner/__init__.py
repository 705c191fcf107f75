"""Thin runner for atom-deploy artifacts: reads the manifest, never the exporter."""
