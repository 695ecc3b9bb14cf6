"""``python -m chatbot_cli``."""

import sys

from chatbot_cli import main

sys.exit(main())
