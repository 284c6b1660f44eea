import sys

from mien.clients.cli import main

sys.exit(main())
