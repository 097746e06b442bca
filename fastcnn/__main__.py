"""``python -m fastcnn``: the fastcnn command."""
import sys

from .cli import main

sys.exit(main())
