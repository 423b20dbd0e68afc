"""Runs that share a shape, trained together: one stacked model, one optimiser step for all.

The small networks of a scaling sweep do not fill a GPU (nor a CPU core's vector units):
a step of one is mostly the cost of launching its kernels. Runs that differ only in
``seed``, ``lr``, ``weight_decay``, ``loss_variant`` (terms and weights of losses with the
same output: single predictions, or ensembles of the same size), ``schedule``,
``warmup_steps`` or ``checkpoint_every`` — same family and size, same data, same steps and
evaluation schedule — are trained here as *members* of one stacked model: their weights
are stacked on a leading axis (``torch.func.stack_module_state``), the network is called
once for all of them (``vmap(functional_call)``, which runs each convolution as one
grouped convolution) and one optimiser step (:class:`StackedOptimizer`) updates them
all, each with its own learning rate and weight decay.

Each member stays the run it would be alone: the same initial weights (its seed), the
same order of batches (its own generator), the same noise of a stochastic network (its
own generator, in the state the global one would have in a solo run), its own loss, its
own curve rows (evaluated by :func:`scalelab.train.loop.evaluate` on its own weights), its
own checkpoint — in the solo format, so a member may resume alone and a solo run may
resume stacked — and its own :class:`~scalelab.result.RunResult`. Its curve equals the
solo run's to float tolerance (the grouped convolution sums in another order;
``tests/test_train_stacked.py``). A member that diverges ends there, as it would alone,
and leaves the stack; the others go on.

Which runs may share a stack is :mod:`scalelab.stacking`'s to say (torch-free, so the
sweep's driver groups runs with it). Not stacked (:func:`~scalelab.stacking.stack_reason`
says why; the sweep runs them alone): a generative family (``diffusion``: its own
objective and sampler), a trunk or branch of data budgets (they share checkpoints along
the trunk), ``compile: true``, adversarial or quantization-aware training, a loss that
reads the latent (``kl``), ``parametrization: mup``. Evaluation is stacked too: one vmapped forward per
validation batch for all members, whose outputs :func:`scalelab.train.loop.evaluate`
then scores per member as it scores a solo run's (``_Replay``).

``cuda_graphs=True`` (CUDA only; ignored on a CPU) captures the stacked training step —
forward, backward and optimiser update, with static input buffers — in one CUDA graph
after a few eager warm-up steps, and replays it: one launch per step instead of hundreds.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from scalelab._errors import ScalelabError
from scalelab.config import RunConfig
from scalelab.data import make_run_data
from scalelab.result import RunResult
from scalelab.stacking import stack_key, stack_reason
from scalelab.train import fieldmetrics, regions
from scalelab.train.checkpoint import save_checkpoint
from scalelab.train.loop import (_peak_memory_bytes, _versions, evaluate, evaluate_bicubic,
                                 lr_at, make_loss, make_model, make_optimizer, resolve_device,
                                 run_size, starting_point)


class StackedOptimizer:
    """Adam, AdamW or SGD (no momentum, as :func:`scalelab.train.loop.make_optimizer`
    builds them) over stacked parameters, members on the first axis, each member with its
    own learning rate and weight decay: the update of ``torch.optim``'s implementations
    term for term (AdamW: Loshchilov & Hutter 2019, Algorithm 2; Adam: Kingma & Ba 2015,
    Algorithm 1, with L2 weight decay added to the gradient), so a member follows its solo
    run to float tolerance. Its state per member is exported to and imported from
    ``torch.optim``'s ``state_dict`` format (:meth:`member_state`, :meth:`load_member`).
    """

    def __init__(self, kind: str, params: list[torch.Tensor], weight_decay: torch.Tensor,
                 betas=(0.9, 0.999), eps: float = 1e-8):
        self.kind, self.params, self.betas, self.eps = kind, params, betas, eps
        self.weight_decay = weight_decay  # (M,)
        members = params[0].shape[0]
        self.steps = torch.zeros(members, dtype=torch.float64)  # per member, on the host
        adam = kind in ("adam", "adamw")
        self.exp_avg = [torch.zeros_like(p) for p in params] if adam else []
        self.exp_avg_sq = [torch.zeros_like(p) for p in params] if adam else []

    @staticmethod
    def _per_member(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.to(like.device, like.dtype).reshape(-1, *([1] * (like.dim() - 1)))

    def coefficients(self, lrs: torch.Tensor) -> torch.Tensor:
        """Count one more step and give its (M, 4) per-member numbers, computed on the host
        in float64 as ``torch.optim`` does: learning rate, AdamW's decay factor
        ``1 − lr·wd``, Adam's step size ``lr / (1 − β₁ᵗ)`` and ``√(1 − β₂ᵗ)``."""
        beta1, beta2 = self.betas
        self.steps += 1
        lrs = lrs.to(torch.float64)
        return torch.stack([lrs, 1 - lrs * self.weight_decay,
                            lrs / (1 - beta1 ** self.steps),
                            (1 - beta2 ** self.steps) ** 0.5], dim=1)

    @torch.no_grad()
    def apply(self, coefficients: torch.Tensor) -> None:
        """The update of every member with :meth:`coefficients` (on the parameters' device:
        a CUDA graph captures this with the coefficients in a static buffer)."""
        beta1, beta2 = self.betas
        decay_l2 = self.kind != "adamw" and bool(self.weight_decay.any())
        for i, param in enumerate(self.params):
            grad = param.grad
            lr, decay, step_size, correction2_sqrt = (
                self._per_member(coefficients[:, k], param) for k in range(4))
            if self.kind == "adamw":
                param.mul_(decay)
            elif decay_l2:
                grad = grad.add(param * self._per_member(self.weight_decay, param))
            if self.kind == "sgd":
                param.sub_(lr * grad)
                continue
            exp_avg, exp_avg_sq = self.exp_avg[i], self.exp_avg_sq[i]
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (exp_avg_sq.sqrt() / correction2_sqrt).add_(self.eps)
            param.sub_(step_size * (exp_avg / denom))

    def step(self, lrs: torch.Tensor) -> None:
        """One update of every member; ``lrs``: (M,) learning rates of this step."""
        self.apply(self.coefficients(lrs).to(self.params[0].device, torch.float32))

    def keep(self, members: torch.Tensor) -> None:
        """Keep only the members at these indices (after :func:`_restack` of the params)."""
        self.steps = self.steps[members.cpu()]
        self.weight_decay = self.weight_decay[members.to(self.weight_decay.device)]
        self.exp_avg = [m[members] for m in self.exp_avg]
        self.exp_avg_sq = [m[members] for m in self.exp_avg_sq]

    def member_state(self, m: int, template: dict, lr: float) -> dict:
        """Member ``m``'s state as ``torch.optim``'s ``state_dict`` (``template``: that of
        the member's own optimiser, which names the parameter groups)."""
        state = copy.deepcopy(template)
        state["param_groups"][0]["lr"] = lr
        if self.kind != "sgd" and self.steps[m] > 0:
            state["state"] = {i: {"step": torch.tensor(float(self.steps[m])),
                                  "exp_avg": self.exp_avg[i][m].detach().cpu().clone(),
                                  "exp_avg_sq": self.exp_avg_sq[i][m].detach().cpu().clone()}
                              for i in range(len(self.params))}
        return state

    @torch.no_grad()
    def load_member(self, m: int, saved: dict) -> None:
        """Member ``m``'s state from a ``torch.optim`` ``state_dict`` (a solo checkpoint's)."""
        for i, entry in saved.get("state", {}).items():
            self.steps[m] = float(entry["step"])
            self.exp_avg[int(i)][m].copy_(entry["exp_avg"])
            self.exp_avg_sq[int(i)][m].copy_(entry["exp_avg_sq"])


@dataclass
class _Member:
    """One run of a stack: its config, its own pieces and what a checkpoint of it carries."""

    cfg: RunConfig
    model: torch.nn.Module  # its own network (evaluation, checkpoints), weights copied in
    loss_fn: object
    bicubic: dict
    size: dict
    template: dict  # its own optimiser's empty state_dict
    batches: torch.Generator  # batch indices
    noise: torch.Generator  # a stochastic network's training noise (the solo run's global RNG)
    cpu_state: torch.Tensor  # on CUDA, the solo run's global CPU RNG state (unused there)
    checkpoint_dir: str | None
    on_row: Callable | None
    start: object
    warnings: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    running_sum: float = 0.0
    running_count: int = 0
    elapsed_before: float = 0.0
    status: str = "running"
    diverged_step: int | None = None


def train_stacked(cfgs: Sequence[RunConfig], on_row: Sequence[Callable | None] | None = None,
                  checkpoint_dirs: Sequence[str | None] | None = None,
                  cuda_graphs: bool = False) -> list[RunResult]:
    """Train ``cfgs`` (configs of equal :func:`stack_key`) as one stacked model; their
    results in the same order, each what :func:`scalelab.train.train` would return.

    ``on_row[i]`` receives run i's rows as :func:`~scalelab.train.train`'s ``on_row``;
    ``checkpoint_dirs[i]`` is run i's checkpoint folder: a member that holds a checkpoint
    resumes from it (members that stopped at different steps train in one stack per
    step), one that had ended is handed back as it is.
    """
    cfgs = list(cfgs)
    if not cfgs:
        return []
    on_row = list(on_row) if on_row is not None else [None] * len(cfgs)
    checkpoint_dirs = list(checkpoint_dirs) if checkpoint_dirs is not None \
        else [None] * len(cfgs)
    for cfg in cfgs:
        if not cfg.validated:
            cfg.validate(source=f"run {cfg.run_id}")
        reason = stack_reason(cfg)
        if reason is not None:
            raise ScalelabError(f"run {cfg.run_id} cannot be stacked: {reason}; train it "
                                f"with scalelab.train.train.")
    if len({stack_key(c) for c in cfgs}) > 1:
        raise ScalelabError("these runs differ in more than seed, lr, weight_decay, "
                            "loss_variant, schedule, warmup_steps and checkpoint_every, so "
                            "they cannot be stacked; group them by scalelab.train.stacked."
                            "stack_key.")
    if len({c.device for c in cfgs}) > 1:
        raise ScalelabError("stacked runs must name one device; give them the same device.")
    results: list[RunResult | None] = [None] * len(cfgs)
    by_step: dict[int, list[int]] = {}
    starts, warnings = [], []
    for i, cfg in enumerate(cfgs):
        warned: list[str] = []
        start = starting_point(cfg, checkpoint_dirs[i], None, warned)
        starts.append(start)
        warnings.append(warned)
        if start.ended is not None:
            results[i] = start.ended
        else:
            step = start.saved["step"] if start.saved is not None else 0
            by_step.setdefault(step, []).append(i)
    for _, indices in sorted(by_step.items()):
        done = _train_stack([cfgs[i] for i in indices], [starts[i] for i in indices],
                            [warnings[i] for i in indices], [on_row[i] for i in indices],
                            [checkpoint_dirs[i] for i in indices], cuda_graphs)
        for i, result in zip(indices, done):
            results[i] = result
    return results


def _network(model: torch.nn.Module) -> tuple[torch.nn.Module, int]:
    """The deterministic network a model runs and its noise channels (0: not stochastic)."""
    if hasattr(model, "noise_channels") and hasattr(model, "base"):
        return model.base, model.noise_channels
    return model, 0


def _restack(tensors: dict, members: torch.Tensor) -> dict:
    return {k: v.detach()[members].clone().requires_grad_(v.requires_grad)
            for k, v in tensors.items()}


def _train_stack(cfgs, starts, warnings, on_rows, checkpoint_dirs, cuda_graphs):
    """One stack of members that all start at the same step (see :func:`train_stacked`);
    the loop of :func:`scalelab.train.train`, with every member's pieces side by side."""
    t0 = time.perf_counter()
    cfg0 = cfgs[0]
    device = resolve_device(cfg0.device)
    if cfg0.amp == "bf16" and device.type not in ("cuda", "cpu"):
        raise ScalelabError(f"amp: bf16 runs on cuda or cpu, not {device.type}; set amp: none.")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg0.amp == "bf16")
    ensemble_members = cfg0.ensemble_members

    # data: the same for every member (it depends on no member's own settings)
    data = make_run_data(cfg0.field, cfg0.samples, cfg0.val_samples, cfg0.field_size,
                         cfg0.scale, cfg0.degradation, data_seed=0, device=device,
                         options=cfg0.options)
    (lr_train, hr_train), (lr_val, hr_val) = data.train, data.val
    hr_val_physical = data.to_physical(hr_val)
    data_range = fieldmetrics.data_range(hr_val_physical)
    val_reference = fieldmetrics.reference(hr_val_physical)
    threshold = cfg0.options.get("threshold")
    threshold = float(fieldmetrics.quantile(hr_val_physical, 0.9) if threshold is None
                      else threshold)

    # each member as its solo run builds it: the same calls on the same RNG from its seed
    members: list[_Member] = []
    bicubic_by_loss: dict = {}
    shifted_by_loss: dict = {}  # the shifted regions' validation sets (options.regions)
    for cfg, start, warned, on_row, folder in zip(cfgs, starts, warnings, on_rows,
                                                  checkpoint_dirs):
        torch.manual_seed(cfg.seed)
        model = make_model(cfg).to(device)
        loss_fn = make_loss(cfg)
        if cfg.loss_variant not in bicubic_by_loss:
            bicubic_by_loss[cfg.loss_variant] = evaluate_bicubic(
                loss_fn, lr_val, hr_val, data_range, ensemble_members, val_reference,
                to_physical=data.to_physical, weights=data.val_weights, masked=data.masked)
        if cfg.loss_variant not in shifted_by_loss:
            shifted_by_loss[cfg.loss_variant] = regions.region_sets(
                data, loss_fn, ensemble_members, cfg.options.get("threshold"))
        size = run_size(cfg, model, tuple(lr_train.shape[1:]), loss_fn)
        template = make_optimizer(cfg, model).state_dict()
        noise = torch.Generator(device=device)
        noise.set_state(torch.cuda.get_rng_state(device) if device.type == "cuda"
                        else torch.get_rng_state())
        member = _Member(cfg, model, loss_fn, bicubic_by_loss[cfg.loss_variant], size,
                         template, torch.Generator(device="cpu").manual_seed(cfg.seed), noise,
                         torch.get_rng_state(), folder, on_row, start, warned)
        members.append(member)

    # the stack: every member's weights on a leading axis, one optimiser for all
    networks = [_network(m.model)[0] for m in members]
    _, noise_channels = _network(members[0].model)
    params, buffers = torch.func.stack_module_state(networks)
    names = list(params)
    kinds = {m.cfg.optimizer for m in members}
    if len(kinds) > 1:
        raise ScalelabError("stacked runs must share their optimizer; group them by "
                            "stack_key.")
    optimizer = StackedOptimizer(
        kinds.pop(), [params[n] for n in names],
        torch.tensor([m.cfg.weight_decay for m in members], dtype=torch.float64))
    for index, member in enumerate(members):
        saved = member.start.saved
        if saved is None:
            continue
        member.model.load_state_dict(saved["model"])
        with torch.no_grad():
            for name, param in _network(member.model)[0].named_parameters():
                params[name][index].copy_(param)
            for name, buffer in _network(member.model)[0].named_buffers():
                buffers[name][index].copy_(buffer)
        optimizer.load_member(index, saved["optimizer"])
        member.batches.set_state(saved["rng"]["batches"])
        member.cpu_state = saved["rng"]["torch"]
        member.noise.set_state(saved["rng"]["cuda"] if device.type == "cuda"
                               else saved["rng"]["torch"])
        member.rows = list(saved["rows"])
        member.running_sum, member.running_count = saved["running_sum"], saved["running_count"]
        member.elapsed_before = saved["elapsed_s"]
        if member.on_row is not None:
            for row in member.rows:
                member.on_row(row)
    start_step = members[0].start.saved["step"] if members[0].start.saved is not None else 0
    skeleton = copy.deepcopy(networks[0]).to("meta")

    def call(p, b, x):
        return torch.func.functional_call(skeleton, (p, b), (x,))

    stacked_forward = torch.vmap(call)
    ensemble_loss = getattr(members[0].loss_fn, "needs_ensemble", False)
    alive = list(range(len(members)))  # indices into members of those still in the stack
    graph = _Graph(cuda_graphs and device.type == "cuda")

    def elapsed(member: _Member) -> float:
        return member.elapsed_before + time.perf_counter() - t0

    def sync(position: int, member: _Member) -> None:
        """The member's own network holds its stacked weights."""
        with torch.no_grad():
            net = _network(member.model)[0]
            for name, param in net.named_parameters():
                param.copy_(params[name][position])

    @torch.no_grad()
    def validation_outputs() -> list[list[torch.Tensor]]:
        """What each member's network gives in :func:`evaluate`, call by call, from one
        stacked forward per call: the same validation batches, and for a stochastic
        network the same noise (a CPU generator seeded with the member's seed, drawn in
        the order evaluate draws it)."""
        live = [members[i] for i in alive]
        outputs: list[list[torch.Tensor]] = [[] for _ in live]
        gens = [torch.Generator(device="cpu").manual_seed(m.cfg.seed) for m in live]

        def noisy(lr_b: torch.Tensor) -> torch.Tensor:
            shape = (lr_b.shape[0], noise_channels, *lr_b.shape[-2:])
            noise = torch.stack([torch.randn(shape, generator=g, dtype=lr_b.dtype)
                                 for g in gens]).to(device)
            return torch.cat([lr_b.expand(len(live), *lr_b.shape), noise], dim=2)

        for i in range(0, lr_val.shape[0], EVAL_BATCH):
            lr_b = lr_val[i:i + EVAL_BATCH]
            with autocast:
                if ensemble_members > 1:
                    ens = stacked_forward(params, buffers, noisy(
                        lr_b.repeat_interleave(ensemble_members, dim=0)))
                    ens = ens.reshape(len(live), lr_b.shape[0], ensemble_members,
                                      *ens.shape[2:])
                    single = None if ensemble_loss else stacked_forward(
                        params, buffers, noisy(lr_b))
                else:
                    ens, single = None, torch.vmap(call, in_dims=(0, 0, None))(
                        params, buffers, lr_b)
            for position in range(len(live)):
                if ens is not None:
                    outputs[position].append(ens[position])
                if single is not None:
                    outputs[position].append(single[position])
        return outputs

    def record(position: int, member: _Member, step: int, train_loss: float,
               outputs: list) -> bool:
        cfg = member.cfg
        replay = _Replay(outputs)
        samples_seen = step * cfg.batch_size
        row = {
            "step": step, "samples_seen": samples_seen, "samples": cfg.samples,
            "epochs": samples_seen / cfg.samples,
            "flops": 3.0 * member.size["flops_per_sample"] * samples_seen,
            "lr": lr_at(max(step - 1, 0), cfg), "train_loss": train_loss,
            **evaluate(replay, replay, member.loss_fn, lr_val, hr_val, data_range,
                       ensemble_members, threshold, autocast, val_reference, cfg.seed,
                       to_physical=data.to_physical, weights=data.val_weights,
                       masked=data.masked),
            **member.bicubic,
        }
        shifted = shifted_by_loss[cfg.loss_variant]
        if shifted:  # each shifted region, scored by the member's own network
            sync(position, member)
            row.update(regions.evaluate_regions(shifted, member.model, member.model,
                                                member.loss_fn, ensemble_members, autocast,
                                                cfg.seed, data.to_physical, data.masked))
        row["wall_time_s"] = elapsed(member)
        if not math.isfinite(row["val_loss"]):
            return False
        member.rows.append(row)
        if member.on_row is not None:
            member.on_row(row)
        return True

    def info(member: _Member) -> dict:
        return {
            "params": member.size["params"],
            "flops_per_sample": member.size["flops_per_sample"],
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or platform.machine(),
            "host": platform.node(),
            "wall_time_s": elapsed(member),
            "peak_memory_bytes": _peak_memory_bytes(device),
            "diverged_step": member.diverged_step,
            "resumed_from_step": member.start.resumed_from,
            "branched_from_step": None,
            **({"warning": " ".join(member.warnings)} if member.warnings else {}),
            "versions": _versions(),
            "config": member.cfg.to_dict(),
            "stacked": len(members),
        }

    def checkpoint(position: int, member: _Member, step: int) -> None:
        if member.checkpoint_dir is None:
            return
        sync(position, member)
        rng = {"batches": member.batches.get_state(),  # the solo run's global RNG states
               "torch": member.cpu_state if device.type == "cuda" else member.noise.get_state()}
        if device.type == "cuda":
            rng["cuda"] = member.noise.get_state()
        save_checkpoint(member.checkpoint_dir, {
            "run_id": member.cfg.run_id, "status": member.status, "step": step,
            "model": member.model.state_dict(),
            "optimizer": optimizer.member_state(position, member.template,
                                                lr_at(max(step - 1, 0), member.cfg)),
            "rng": rng, "running_sum": member.running_sum,
            "running_count": member.running_count, "rows": member.rows,
            "elapsed_s": elapsed(member),
            "info": json.loads(json.dumps(info(member), default=str))
            if member.status != "running" else {},
        })

    def end(position: int, member: _Member) -> None:
        """A member's run has ended (finished or diverged): its final checkpoint."""
        if member.status == "running":
            member.status = "finished"
        if member.checkpoint_dir is not None and member.cfg.checkpoint_every > 0:
            checkpoint(position, member, member.rows[-1]["step"] if member.rows else 0)

    def drop(positions: list[int]) -> None:
        """Members at these stack positions leave the stack (they have ended)."""
        nonlocal params, buffers
        keep = [p for p in range(len(alive)) if p not in positions]
        index = torch.tensor(keep, dtype=torch.long, device=device)
        params = _restack(params, index)
        buffers = _restack(buffers, index)
        optimizer.params = [params[n] for n in names]
        optimizer.keep(index)
        alive[:] = [alive[p] for p in keep]
        graph.reset()

    if start_step == 0:
        ended = []
        outputs = validation_outputs()
        for position, index in enumerate(alive):
            if not record(position, members[index], 0, float("nan"), outputs[position]):
                members[index].status, members[index].diverged_step = "diverged", 0
                ended.append(position)
        for position in ended:
            end(position, members[alive[position]])
        if ended:
            drop(ended)

    steps, batch = cfg0.steps, cfg0.batch_size
    eval_every = cfg0.eval_every
    step_losses: list[torch.Tensor] = []  # (M,) each, on the device

    def step_inputs(step: int):
        """This step's batches, noise and learning rates, each member's from its own RNG."""
        live = [members[i] for i in alive]
        idx = torch.stack([torch.randint(0, m.cfg.samples, (batch,), generator=m.batches)
                           for m in live]).to(device)
        lr_b, hr_b = lr_train[idx], hr_train[idx]
        inputs = lr_b
        if noise_channels:
            repeated = lr_b.repeat_interleave(ensemble_members, dim=1) if ensemble_loss \
                else lr_b
            shape = (repeated.shape[1], noise_channels, *repeated.shape[-2:])
            noise = torch.stack([torch.randn(shape, generator=m.noise, dtype=lr_b.dtype,
                                             device=device) for m in live])
            inputs = torch.cat([repeated, noise], dim=2)
        lrs = torch.tensor([lr_at(step, m.cfg) for m in live], dtype=torch.float64)
        coefficients = optimizer.coefficients(lrs).to(device, torch.float32)
        return inputs, lr_b, hr_b, coefficients

    def losses_of(p, b, inputs, lr_b, hr_b):
        with autocast:
            out = stacked_forward(p, b, inputs)
            if ensemble_loss:
                out = out.reshape(out.shape[0], lr_b.shape[1], ensemble_members,
                                  *out.shape[2:])
            losses = []
            for position, index in enumerate(alive):
                pred, target = out[position].float(), hr_b[position]
                if data.masked:
                    pred, target = fieldmetrics.fill_masked(pred, target)
                losses.append(members[index].loss_fn(pred, target, lr_b[position]))
        return torch.stack(losses)

    def one_step(inputs, lr_b, hr_b, coefficients):
        losses = losses_of(params, buffers, inputs, lr_b, hr_b)
        for param in params.values():
            param.grad = None
        losses.sum().backward()
        optimizer.apply(coefficients)
        return losses.detach()

    for step in range(start_step, steps if alive else start_step):
        losses = graph.run(one_step, step_inputs(step))
        step_losses.append(losses)

        done = step + 1
        regular = done % eval_every == 0
        evaluate_now = regular or done == steps
        checkpoint_now = [members[i].checkpoint_dir is not None
                          and members[i].cfg.checkpoint_every > 0
                          and done % members[i].cfg.checkpoint_every == 0 for i in alive]
        ended = []
        outputs = validation_outputs() if evaluate_now else None
        if evaluate_now or any(checkpoint_now):
            values = torch.stack(step_losses).cpu().tolist()  # (steps, M)
            step_losses.clear()
            for position, index in enumerate(alive):
                member = members[index]
                column = [row[position] for row in values]
                bad = [k for k, v in enumerate(column) if not math.isfinite(v)]
                if bad:
                    member.status = "diverged"
                    member.diverged_step = done - len(column) + bad[0] + 1
                    ended.append(position)
                    continue
                for value in column:  # one at a time: the same sum wherever it stops
                    member.running_sum += value
                    member.running_count += 1
        for position, index in enumerate(alive):
            member = members[index]
            if position in ended:
                continue
            if evaluate_now:
                if not record(position, member, done,
                              member.running_sum / member.running_count, outputs[position]):
                    member.status, member.diverged_step = "diverged", done
                    ended.append(position)
                    continue
                member.running_sum, member.running_count = 0.0, 0
            if checkpoint_now[position]:
                checkpoint(position, member, done)
        if done == steps:
            ended = list(range(len(alive)))
        for position in sorted(set(ended)):
            end(position, members[alive[position]])
        if ended and done < steps:
            drop(sorted(set(ended)))
        if not alive or done == steps:
            break
    for position, index in enumerate(alive):  # a stack resumed at its last step took none
        if members[index].status == "running":
            end(position, members[index])
    return [RunResult(run_id=m.cfg.run_id, status=m.status, rows=m.rows, info=info(m))
            for m in members]


EVAL_BATCH = 256  # the batch size of scalelab.train.loop.evaluate


class _Replay:
    """A member's network inside :func:`scalelab.train.loop.evaluate`: it hands back, call
    by call, the outputs the stacked forward computed for the member (evaluate's own
    metrics, loss and bookkeeping then run unchanged)."""

    def __init__(self, outputs: list):
        self.outputs = list(outputs)

    def _next(self, *args, **kwargs) -> torch.Tensor:
        return self.outputs.pop(0)

    __call__ = sample = _next

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self


class _Graph:
    """The stacked training step captured in one CUDA graph and replayed (``enabled``: CUDA
    and the switch on); otherwise the step runs eagerly. The step's inputs (batches, noise,
    the optimiser's per-member numbers, all made outside the graph from each member's own
    RNG) are copied into static buffers; the graph is captured after ``WARMUP`` eager
    steps on a side stream (as ``torch.cuda.graphs`` asks) and dropped when the stack
    changes (:meth:`reset`)."""

    WARMUP = 3

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.reset()

    def reset(self) -> None:
        self.graph, self.static, self.out, self.eager_steps = None, None, None, 0

    def run(self, step_fn, inputs) -> torch.Tensor:
        if not self.enabled:
            return step_fn(*inputs)
        if self.graph is None and self.eager_steps < self.WARMUP:
            self.eager_steps += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = step_fn(*inputs)
            torch.cuda.current_stream().wait_stream(side)
            return out
        if self.graph is None:
            self.static = [x.clone() for x in inputs]
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.out = step_fn(*self.static)
        for static, value in zip(self.static, inputs):
            static.copy_(value)
        self.graph.replay()
        return self.out.clone()
