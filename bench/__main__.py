"""``python -m bench``: the benchmark table."""

from .run import main

raise SystemExit(main())
