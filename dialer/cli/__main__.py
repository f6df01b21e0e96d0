"""`python -m dialer.cli`: the same as the `dialer` command."""
import sys

from dialer.cli import main

sys.exit(main())
