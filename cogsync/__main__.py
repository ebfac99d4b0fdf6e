import sys

from cogsync.cli import main

sys.exit(main())
