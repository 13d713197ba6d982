import sys

from gridmesh.cli import main

sys.exit(main())
