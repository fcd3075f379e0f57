"""``python -m wx_scoring score …``: see :mod:`wx_scoring.cli`."""

from .cli import main

raise SystemExit(main())
