"""``python -m devhost``: serve function_app.py locally (see ``devhost.host``)."""

from devhost.host import main

if __name__ == "__main__":
    raise SystemExit(main())
