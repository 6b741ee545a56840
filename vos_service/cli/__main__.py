"""`python -m vos_service.cli ...`: the same as `vos-service ...`."""

import sys

from .main import main

sys.exit(main())
