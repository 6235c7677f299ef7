"""`python -m tests.soak`: see tests/soak/run.py."""

from tests.soak.run import main

raise SystemExit(main())
