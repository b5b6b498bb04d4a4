"""Started by torchrun from tests/test_distributed.py: trains (or resumes) a run, then writes this
rank's parameters and buffers to OUT/rank<R>.safetensors so the test can compare ranks."""
import sys
from pathlib import Path

from safetensors.torch import save_file

from ganforge.config import build_config, parse_override
from ganforge.rundir import read_config
from ganforge.training import distributed
from ganforge.training.trainer import Trainer


def main(out: str, resume: str, *overrides: str) -> None:
    run, updates = Path(out) / "run", [parse_override(o) for o in overrides]
    if resume == "resume":  # as `ganforge train --resume`: the run's own config, with the new overrides
        config = build_config(overrides=[read_config(run).to_dict(), *updates])
    else:
        config = build_config(overrides=updates)
    trainer = Trainer(config, run, resume=resume == "resume", echo=lambda *a, **k: None)
    trainer.train()
    tensors = {f"{role}.{key}": value.detach().contiguous()
               for role, net in (("G", trainer.state.G), ("D", trainer.state.D))
               for key, value in net.state_dict().items()}
    save_file(tensors, str(Path(out) / f"rank{trainer.world.rank}.safetensors"))
    distributed.shutdown(trainer.world)


if __name__ == "__main__":
    main(*sys.argv[1:])
