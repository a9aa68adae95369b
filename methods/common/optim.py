"""Optimiser construction every method shares (the LR schedule is core/schedule.py): torch.optim's
SGD, Adam, AdamW, NAdam with decoupled weight decay (`nadamw`) and Muon (`muon`: Muon on the hidden
matrices, AdamW on the rest)."""

from __future__ import annotations

from collections import ChainMap

import torch
from torch import nn

from core.config import TrainConfig


def hidden_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The parameters Muon updates: the 2-D weights of linear and recurrent layers inside the model,
    not of its embeddings and not of a linear layer that is the model's own child (the classifier
    `fc` of the ResNets and the LSTM; the GPT's output layer is its token embedding, tied)."""
    heads = {id(child) for child in model.children() if isinstance(child, nn.Linear)}
    found = []
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.RNNBase) and id(module) not in heads:
            found += [p for p in module.parameters(recurse=False) if p.ndim == 2]
    return found


class OptimizerSet:
    """Several torch.optim optimisers over disjoint parameters, stepped as one (Muon's matrices and
    AdamW's rest): the optimiser interface the methods use, `param_groups` included."""

    def __init__(self, parts: list[torch.optim.Optimizer]):
        self.parts = parts

    @property
    def param_groups(self) -> list[dict]:
        return [group for part in self.parts for group in part.param_groups]

    @property
    def state(self) -> ChainMap:
        return ChainMap(*(part.state for part in self.parts))

    def step(self, closure=None) -> None:
        for part in self.parts:
            part.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"parts": [part.state_dict() for part in self.parts]}

    def load_state_dict(self, state: dict) -> None:
        for part, part_state in zip(self.parts, state["parts"], strict=True):
            part.load_state_dict(part_state)


def make_optimizer(
    params, cfg: TrainConfig, matrices=(), fused: bool | None = None
) -> torch.optim.Optimizer | OptimizerSet:
    """The optimiser `cfg.optimizer` names over `params`.

    `matrices`: those of `params` that Muon updates (`hidden_matrices` of the model; the rest get
    AdamW); only `muon` reads it. `fused`: torch's fused kernels where the optimiser has them (None:
    torch's default choice). Muon's learning rate is AdamW's, scaled to match its update RMS
    (`adjust_lr_fn="match_rms_adamw"`, Liu et al. 2025), so one `lr` serves both parts.
    """
    params = list(params)
    kind, decay, betas = cfg.optimizer, cfg.weight_decay, (cfg.beta1, cfg.beta2)
    if kind == "muon":
        hidden = {id(p) for p in matrices}
        muon = [p for p in params if id(p) in hidden]
        rest = [p for p in params if id(p) not in hidden]
        parts = []
        if muon:
            parts.append(
                torch.optim.Muon(
                    muon,
                    lr=cfg.lr,
                    weight_decay=decay,
                    momentum=cfg.momentum,
                    nesterov=cfg.nesterov,
                    adjust_lr_fn="match_rms_adamw",
                )  # fmt: skip
            )
        if rest:
            parts.append(torch.optim.AdamW(rest, lr=cfg.lr, betas=betas, weight_decay=decay, fused=fused))
        return parts[0] if len(parts) == 1 else OptimizerSet(parts)
    if kind == "nadamw":
        return torch.optim.NAdam(  # (torch has no fused NAdam; its default is foreach on CUDA)
            params, lr=cfg.lr, betas=betas, weight_decay=decay, decoupled_weight_decay=True
        )
    if kind in ("adam", "adamw"):
        adam = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
        return adam(params, lr=cfg.lr, betas=betas, weight_decay=decay, fused=fused)
    return torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=decay, nesterov=cfg.nesterov, fused=fused
    )


def set_lr(optimizer: torch.optim.Optimizer | OptimizerSet, lr: float) -> None:
    """Set every parameter group's learning rate."""
    for group in optimizer.param_groups:
        group["lr"] = lr
