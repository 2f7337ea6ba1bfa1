"""The run layout: every path a job reads or writes under ``runs/<name>/``, named once.

    runs/<name>/config.yaml                 the resolved config (train writes it; gather and infer --run read it)
    runs/<name>/packed/                     preprocess: shards, manifest.json, heldout.jsonl (data.packed_dir moves it)
    runs/<name>/checkpoints/step-N/         train: complete checkpoints; checkpoints/latest names the newest
    runs/<name>/STOP, DONE                  a request to save and stop; training finished (written last)
    runs/<name>/gathered/{adapter,merged}/  gather
    runs/<name>/predictions.jsonl           infer (shards: predictions.shard-i-of-M.jsonl beside it)
    runs/<name>/score/report.json           score
    runs/<name>/bfcl/                       the BFCL stages (eval.bfcl_dir): gold.jsonl, conversion.json,
                                            predictions.jsonl, report.json (EvalLayout; fcdist eval bfcl --out)
    runs/<name>/slurm/, submitit/           the cluster jobs' logs

Train, gather, infer, score, submit, the demo and the SLURM templates' helpers all take their paths from
here; what makes a checkpoint usable (its file list, the ``latest`` pointer) is fcdist/checkpoints.py's rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fcdist.checkpoints import LATEST, read_latest_pointer, step_folder, verify_checkpoint
from fcdist.config import RUN_CONFIG
from fcdist.preprocess.shards import HELDOUT  # preprocess writes it into the packed folder; infer and score read it


@dataclass(frozen=True)
class EvalLayout:
    """The files of one BFCL evaluation: runs/<name>/bfcl/, or the folder ``fcdist eval bfcl --out`` names."""

    root: Path

    gold = property(lambda self: self.root / "gold.jsonl")  # the converted cases, xlam rows
    conversion = property(lambda self: self.root / "conversion.json")  # cases read, converted, skipped
    predictions = property(lambda self: self.root / "predictions.jsonl")
    report = property(lambda self: self.root / "report.json")


@dataclass(frozen=True)
class RunLayout:
    """The folders and files of one run."""

    root: Path  # runs/<name>: the config's output.root / output.name
    packed: Path  # the config's packed_dir: runs/<name>/packed unless data.packed_dir says otherwise

    @classmethod
    def of(cls, config) -> "RunLayout":
        """The layout of a job config (fcdist.config.JobConfig)."""
        return cls(config.run_dir, config.packed_dir)

    @classmethod
    def at(cls, root: Path) -> "RunLayout":
        """A run folder given by path (gather --run, infer --run), its packed folder where it is by default."""
        return cls(Path(root), Path(root) / "packed")

    config = property(lambda self: self.root / RUN_CONFIG)
    heldout = property(lambda self: self.packed / HELDOUT)
    checkpoints = property(lambda self: self.root / "checkpoints")
    latest_pointer = property(lambda self: self.checkpoints / LATEST)
    stop = property(lambda self: self.root / "STOP")
    done = property(lambda self: self.root / "DONE")
    gathered = property(lambda self: self.root / "gathered")
    predictions = property(lambda self: self.root / "predictions.jsonl")
    report = property(lambda self: self.root / "score" / "report.json")
    bfcl = property(lambda self: EvalLayout(self.root / "bfcl"))
    slurm_logs = property(lambda self: self.root / "slurm")
    submitit = property(lambda self: self.root / "submitit")

    def slurm_log(self, stage: str, job: str) -> Path:
        """The log a template's job appends to: slurm/<stage>-<job>.out (job: an id, or <array id>_<task>)."""
        return self.slurm_logs / f"{stage}-{job}.out"

    def evaluation(self, slug: str) -> tuple[Path, Path]:
        """(predictions, report) of one named evaluation beside the chain's own (the demo's untrained/trained sets)."""
        return self.root / "predictions" / f"{slug}.jsonl", self.root / "score" / f"{slug}.json"

    def checkpoint(self, name: str = LATEST) -> Path:
        """A complete checkpoint: ``latest`` (the pointer the trainer writes after each one) or step-<N>; it must
        hold exactly the files it was published with."""
        if name == LATEST:
            path = read_latest_pointer(self.checkpoints)
            if path is None:
                raise FileNotFoundError(f"{self.latest_pointer}: no complete checkpoint yet (has training saved one?)")
        else:
            path = step_folder(self.checkpoints, name, "--checkpoint")
        verify_checkpoint(path)
        return path

    def gathered_model(self) -> Path:
        """What gather left: ``merged/`` when it wrote one, else ``adapter/``."""
        for name in ("merged", "adapter"):
            if (self.gathered / name).is_dir():
                return self.gathered / name
        raise FileNotFoundError(f"{self.gathered}: no merged/ or adapter/ folder; run `fcdist gather --run {self.root}` first")
