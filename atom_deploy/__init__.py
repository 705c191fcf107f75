"""atom-deploy: export and run ATOM-style video-language pipelines on devices."""

__version__ = "0.1.0"
