"""python3 -m framering send|recv|ls"""

import sys

from .cli import main

sys.exit(main())
