"""atom-deploy: export and run ATOM-style video-language pipelines on devices."""

import atom_runner  # noqa: F401  (first: it sets the OpenMP wait policy before torch loads)

__version__ = "0.1.0"
