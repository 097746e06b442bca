"""``python -m fastcnn``: the fastcnn command."""
import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while Python imports the command
    sys.exit(130)

sys.exit(main())
