import sys

from atom_deploy.cli import main

sys.exit(main())
