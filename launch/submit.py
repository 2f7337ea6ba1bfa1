"""Submit the whole pipeline with submitit from a plain checkout; it runs ``fcdist submit`` (fcdist/submit.py).

    python launch/submit.py --config configs/jobs/<Y>.yaml [--cluster slurm|local|debug] [--nodes K] [--gpus-per-node G] [key=value ...]
"""

import sys
from pathlib import Path

# Importable from a plain checkout too (SLURM jobs often run one without installing the package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fcdist.submit import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
