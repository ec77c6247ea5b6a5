"""`python -m gupshup_async` runs the console script."""

from .cli import main

raise SystemExit(main())
