"""``python -m safegen`` runs the ``safegen`` command."""

from safegen.cli import main

raise SystemExit(main())
