"""``launch/train.py`` with rank 1 stalled after step 3, for tests/integration/test_hang.py:

    accelerate launch ... tests/helpers/stall_train.py --config CONFIG.yaml

The stall is a test callback given to ``train(callbacks=...)``, so production code has no test hook. It
writes the time it began to ``<run>/stalled-at`` so the test can measure how long the job took to end.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from transformers import TrainerCallback  # noqa: E402

from fcdist.config import load_config  # noqa: E402
from fcdist.train.trainer import build_parser, train  # noqa: E402

STALLED_RANK, STALLED_STEP = 1, 3


def stall_forever() -> None:
    """A rank that stops making progress while its process lives (a deadlock, a dead file system)."""
    while True:
        time.sleep(0.1)


class StallOneRank(TrainerCallback):
    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def on_step_end(self, args, state, control, **kwargs):
        if args.process_index == STALLED_RANK and state.global_step == STALLED_STEP:
            (self.run_dir / "stalled-at").write_text(f"{time.time()}\n")
            stall_forever()


if __name__ == "__main__":
    args = build_parser().parse_args()
    config = load_config(args.config, args.overrides)
    train(config, callbacks=[StallOneRank(config.run_dir)])
