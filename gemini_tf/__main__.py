"""`python -m gemini_tf` runs the CLI."""

import sys

from gemini_tf.cli import main

sys.exit(main())
