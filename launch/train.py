"""The script ``accelerate launch`` starts on every process; it runs ``fcdist train`` (no second copy of the logic).

    accelerate launch --config_file configs/accelerate/<X>.yaml launch/train.py --config configs/jobs/<Y>.yaml [key=value ...]
"""

import sys
from pathlib import Path

# Importable from a plain checkout too (SLURM jobs often run one without installing the package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fcdist.train.launcher import die_with_launcher  # noqa: E402

die_with_launcher()  # before the heavy imports below; see its docstring

from fcdist.train.trainer import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
