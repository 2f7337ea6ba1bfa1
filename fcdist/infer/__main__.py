"""``python -m fcdist.infer``, as ``fcdist infer``."""

import sys

from fcdist.infer import main

sys.exit(main())
