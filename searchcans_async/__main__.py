"""``python -m searchcans_async``: the ``searchcans-async`` command."""

from ._cli import main

if __name__ == "__main__":
    main()
