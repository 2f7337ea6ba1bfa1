"""``python -m fcdist.score``, as ``fcdist score``."""

import sys

from fcdist.score import main

sys.exit(main())
