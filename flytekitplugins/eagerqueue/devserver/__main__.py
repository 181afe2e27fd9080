"""``python -m flytekitplugins.eagerqueue.devserver`` runs the ``eagerqueue`` command line."""

import sys

from flytekitplugins.eagerqueue.devserver.cli import main

sys.exit(main())
