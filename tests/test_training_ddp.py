"""DDP on 2 CPU processes (gloo): loss falls, ranks stay identical, and match one process."""

from __future__ import annotations

import csv

import torch
from training_tiny import free_port, join, start_child, tiny_config

from indiflow.data import SyntheticPairs
from indiflow.degradations import BicubicSR
from indiflow.interpolant import ConstantNoise
from indiflow.time_laws import UniformTime
from indiflow.training import train
from indiflow.training.distributed import DistributedContext, GlobalBatchSampler
from indiflow.training.loss import shard_loss

STEPS = 8


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()]).clone()


def _recording(store: list):
    def hook(step: int, model: torch.nn.Module) -> None:
        store.append(_flat(model))

    return hook


def _losses(run) -> list[float]:
    with open(run / "metrics.csv", newline="") as file:
        return [float(row["loss"]) for row in csv.DictReader(file)]


def test_two_gloo_ranks_match_one_process_with_the_same_global_batch(tmp_path):
    config = tiny_config(f"train.steps={STEPS}", "train.checkpoint_every=4", "data.length=24")
    port = free_port()

    def rank_main(rank: int):
        def main() -> None:
            weights: list[torch.Tensor] = []
            train(config, out_dir=tmp_path / "ddp", on_step=_recording(weights))
            torch.save(torch.stack(weights), tmp_path / f"rank{rank}.pt")

        env = {"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)}
        return start_child(main, env | {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})

    ranks = [rank_main(0), rank_main(1)]
    assert [join(process) for process in ranks] == [0, 0]

    single: list[torch.Tensor] = []
    train(config, out_dir=tmp_path / "one", on_step=_recording(single))

    per_rank = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert per_rank[0].shape[0] == STEPS
    assert torch.equal(per_rank[0], per_rank[1]), "ranks' weights differ after some step"
    torch.testing.assert_close(per_rank[0], torch.stack(single), rtol=1e-4, atol=1e-5)

    losses = _losses(tmp_path / "ddp")
    assert len(losses) == STEPS
    assert sum(losses[-2:]) < 0.5 * sum(losses[:2]), losses
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(_losses(tmp_path / "one")))
    # Only rank 0 wrote files: one set of checkpoints and one CSV.
    assert sorted(p.name for p in (tmp_path / "ddp").glob("step_*.pt")) == [
        "step_00000004.pt",
        "step_00000008.pt",
    ]


def _ctx(rank: int, world_size: int) -> DistributedContext:
    return DistributedContext(rank, world_size, rank, torch.device("cpu"))


def test_ranks_together_see_the_single_process_global_batch():
    dataset = list(range(23))  # 23 items: the incomplete last global batch is dropped
    batch, world = 6, 3
    single = list(GlobalBatchSampler(dataset, _ctx(0, 1), seed=5))
    ranks = [list(GlobalBatchSampler(dataset, _ctx(r, world), seed=5)) for r in range(world)]
    per_rank = batch // world
    for i in range(len(single) // batch):
        together = sorted(x for r in ranks for x in r[i * per_rank : (i + 1) * per_rank])
        assert together == sorted(single[i * batch : (i + 1) * batch])
    skipped = GlobalBatchSampler(dataset, _ctx(1, world), seed=5)
    skipped.set_epoch(0, skip=per_rank)
    assert list(skipped) == ranks[1][per_rank:]
    assert len(skipped) == len(ranks[1]) - per_rank


def test_shard_losses_draw_the_global_batch_rows():
    """Rank r of K sees exactly rows r::K of the single-process draws of t and x_t."""
    seen: dict[int, list] = {}

    def regressor_for(rank: int):
        def regressor(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            seen[rank] = [x_t.clone(), t.clone()]
            return 0.5 * x_t

        return regressor

    pairs = SyntheticPairs([torch.rand(3, 16, 16)], BicubicSR(2), patch=8, length=6)
    x = torch.stack([pairs[i][0] for i in range(6)])
    y = torch.stack([pairs[i][1] for i in range(6)])
    kwargs = {"noise": ConstantNoise(0.1), "time_law": UniformTime(), "norm": "l2"}

    def loss(rank: int, world: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(11)
        rows = slice(rank, None, world)
        return shard_loss(
            regressor_for(rank + 10 * world), x[rows], y[rows], generator=generator,
            rank=rank, world_size=world, **kwargs,
        )  # fmt: skip

    whole = loss(0, 1)
    halves = [loss(r, 2) for r in (0, 1)]
    torch.testing.assert_close((halves[0] + halves[1]) / 2, whole)
    for r in (0, 1):
        torch.testing.assert_close(seen[20 + r][0], seen[10][0][r::2])
        assert torch.equal(seen[20 + r][1], seen[10][1][r::2])
