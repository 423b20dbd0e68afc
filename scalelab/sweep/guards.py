"""Checks that refuse a spec before any work starts, each with one sentence.

What the per-value checks of :mod:`scalelab.config` cannot see alone:

- reading the file: a folder given for a spec, bytes that are not UTF-8, YAML tags
  (``!!python/object`` and kin; a spec holds plain values only), a key given twice in
  one mapping, on two lines or on one (YAML would silently keep the last) —
  :func:`read_spec_yaml`; a file over ``MAX_SPEC_BYTES``, nesting deeper than
  ``MAX_DEPTH`` and an alias bomb (more than ``MAX_VALUES`` values once YAML's aliases
  are expanded, counted without expanding them) — :func:`check_nesting`;
- what the runs will do: a spec's ``metric.name`` that no run records
  (:func:`check_metric`), a branch whose ``parent`` is no trunk of the sweep
  (:func:`check_parents`), ``options.decay_fraction`` where no schedule reads it or
  outside (0, 1] (:func:`check_schedule_options`), a diffusion ``sampler_steps`` that
  could not finish (:func:`check_sampling_work`);
- names: a sweep's ``name`` becomes a folder name (``reports/<name>/``), so it must be
  a plain name, not a path — :func:`check_name`;
- ``options``: a key that no family, field, degradation or loop setting reads (a
  typo) is refused with the nearest valid key, and a key that none of the sweep's
  own runs reads (``window`` on an EDSR-only sweep) with the family or field that
  does read it — :func:`check_options_keys`;
- sizes: a network, a batch or a data set that cannot fit in this machine's memory
  is refused from an analytic lower bound of the bytes it needs (no model is built,
  nothing is allocated) — :func:`memory_lower_bound`, :func:`check_memory`;
- where runs are launched (:func:`check_launch`): a store path that cannot be
  written, a store that is damaged, a special file or locked by another process, and
  ``device: cuda`` (or CUDA ``devices``) on a machine where torch sees no
  CUDA GPU. Torch is imported there only, so loading a spec stays torch-free.

The parameter counts are lower bounds from the leading ``width²`` terms of each
family's layers, declared with the family (:mod:`scalelab.models.names`); training
memory counts 4 bytes per weight for the weights and gradients and two more for Adam's
moments (Kingma & Ba 2015, Algorithm 1), plus one stored activation per block. The real need is larger, so a refusal is never wrong.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import yaml

from scalelab._errors import SpecError

BYTES = 4  # float32


# -- reading the file ----------------------------------------------------------------------
class _SpecLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping."""


def _no_duplicates(loader: _SpecLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    # the mapping's own keys, before merge keys (<<) bring in theirs (which its own may
    # override): a key written twice — on two lines, or twice in one flow mapping such
    # as {value: 1, value: 2} — is refused
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            continue  # SafeLoader names an unhashable key itself
        if key in seen:
            where = (f"first at line {seen[key].line + 1}" if seen[key].line !=
                     key_node.start_mark.line else
                     f"twice on line {key_node.start_mark.line + 1}")
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} ({where})", key_node.start_mark)
        seen[key] = key_node.start_mark
    loader.flatten_mapping(node)  # merge keys (<<) are expanded, and may be overridden
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_SpecLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def read_spec_yaml(path: Path):
    """The YAML content of the spec file ``path``; one SpecError sentence if it cannot be."""
    path = Path(path)
    from scalelab._errors import ScalelabError
    from scalelab._files import check_name_lengths

    try:
        check_name_lengths(path)
    except ScalelabError as err:
        raise SpecError(str(err)) from None
    if path.is_dir():
        raise SpecError(f"{path}: is a folder, not a spec file; give the path of a YAML spec "
                        f"such as sweeps/quickstart.yaml.")
    if path.exists() and not path.is_file():  # a FIFO or a device: reading could block
        raise SpecError(f"{path}: is not a regular file (a pipe, a device or a socket); give "
                        f"the path of a YAML spec such as sweeps/quickstart.yaml.")
    if not path.is_file():
        raise SpecError(f"{path}: no such sweep spec file; give the path of a YAML spec "
                        f"such as sweeps/quickstart.yaml.")
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(f"{path}: the spec file is {size:,} bytes, more than a sweep spec "
                            f"may be ({MAX_SPEC_BYTES:,}); a spec lists values, not data — "
                            f"give data as a file path in options.")
        data = path.read_bytes()
    except OSError as err:
        raise SpecError(f"{path}: cannot read the spec file ({(err.strerror or '').lower()}); "
                        f"check its permissions.") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise SpecError(f"{path}: the spec file is not UTF-8 text (byte {data[err.start]:#04x} "
                        f"at line {line}); save it as UTF-8.") from None
    try:
        raw = yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise SpecError(f"{path}: the spec nests lists or mappings too deeply for YAML to read "
                        f"(more than {MAX_DEPTH} levels are refused); write flat values.") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        if problem.startswith("duplicate key"):
            key = problem.split("(")[0].removeprefix("duplicate key").strip()
            raise SpecError(f"{path}: the key {key} is given twice in one mapping{where} "
                            f"({problem.split('(', 1)[1].rstrip(')')}); keep one of them."
                            ) from None
        if "constructor for the tag" in problem:
            found = re.search(r"tag '([^']*)'", problem)
            tag = (found.group(1) if found else "a tag").replace("tag:yaml.org,2002:", "!!")
            raise SpecError(f"{path}: YAML tags are not allowed in a spec ({tag}{where}); write "
                            f"plain values (numbers, text, lists, mappings).") from None
        raise SpecError(f"{path}: YAML syntax error{where} ({problem}); fix the YAML "
                        f"and run again.") from None
    check_nesting(raw, str(path))
    return raw


#: A spec file's largest size, the deepest nesting of its lists and mappings, and the most
#: values it may hold once YAML's aliases (*name) are expanded: a spec is a page of settings,
#: and an alias bomb (a 700-byte file whose aliases expand nine-fold eight times over) or
#: a list 3000 deep is refused before anything walks it.
MAX_SPEC_BYTES = 1_000_000
MAX_DEPTH = 32
MAX_VALUES = 200_000


def check_nesting(raw, source: str) -> None:
    """Refuse a spec nested deeper than ``MAX_DEPTH``, holding more than ``MAX_VALUES``
    values with its aliases expanded, or holding itself (a recursive alias) — without
    expanding anything: each shared list or mapping is counted once and its size reused."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    state: dict[int, str] = {}
    stack: list[tuple] = [(raw, False)]
    while stack:
        obj, done = stack.pop()
        if not isinstance(obj, (dict, list)):
            continue
        key = id(obj)
        children = [v for v in (obj.values() if isinstance(obj, dict) else obj)
                    if isinstance(v, (dict, list))]
        if done:
            n_scalars = len(obj) - len(children) + (len(obj) if isinstance(obj, dict) else 0)
            size[key] = 1 + n_scalars + sum(size[id(c)] for c in children)
            height[key] = 1 + max((height[id(c)] for c in children), default=0)
            state[key] = "done"
            if height[key] > MAX_DEPTH:
                raise SpecError(f"{source}: the spec nests lists or mappings more than "
                                f"{MAX_DEPTH} levels deep; write flat values (a spec holds "
                                f"settings, not data).")
            if size[key] > MAX_VALUES:
                raise SpecError(f"{source}: the spec holds more than {MAX_VALUES:,} values once "
                                f"its YAML aliases (*name) are expanded; an alias repeated "
                                f"inside aliases multiplies — write the values out, or fewer.")
            continue
        if state.get(key) == "done":
            continue
        if state.get(key) == "open":
            raise SpecError(f"{source}: the spec holds itself (a YAML alias inside the anchor "
                            f"it names); write the values out.")
        state[key] = "open"
        stack.append((obj, True))
        stack.extend((c, False) for c in children if state.get(id(c)) != "done")


# -- names ---------------------------------------------------------------------------------
MAX_NAME = 100  # W&B takes group names of up to 128 characters; a folder name 255 bytes
def check_name(name, source: str) -> None:
    """A sweep's name names a folder (``reports/<name>``) and a W&B group: plain text."""
    if not isinstance(name, (str, int, float)) or isinstance(name, bool):
        raise SpecError(f"{source}: name must be a plain name such as my-sweep, got {name!r}.")
    text = str(name)
    if len(text) > MAX_NAME or len(text.encode("utf-8")) > 255:
        raise SpecError(f"{source}: name {text[:24]!r}... is {len(text)} characters "
                        f"({len(text.encode('utf-8'))} bytes) long; a sweep's name names its "
                        f"folder and W&B group, so keep it to {MAX_NAME} characters and 255 "
                        f"bytes.")
    if (not text.strip() or "/" in text or "\\" in text or text.strip(".") == ""
            or text != text.strip() or any(ord(c) < 32 for c in text)):
        raise SpecError(f"{source}: name {text!r} must be a plain name (letters, digits, -, _, "
                        f"no path separators or leading/trailing spaces), e.g. my-sweep; set "
                        f"scalelab.store to choose where the store goes.")


# -- options -------------------------------------------------------------------------------
def option_readers() -> dict[str, list[str]]:
    """Each key ``options`` may hold → what reads it (``family swinir``, ``field grf``, ...)."""
    from scalelab.data.names import DEGRADATION_OPTIONS
    from scalelab.data.names import REGISTRY as FIELDS
    from scalelab.models.names import REGISTRY as FAMILIES
    from scalelab.registry import SCHEDULE_OPTIONS, TRAIN_OPTIONS

    readers: dict[str, list[str]] = {}  # from the records of each kind
    for family, record in FAMILIES.items():
        for key in record.options:
            readers.setdefault(key, []).append(f"family {family}")
    for field, record in FIELDS.items():
        for key in record.options:
            readers.setdefault(key, []).append(f"field {field}")
    for key in DEGRADATION_OPTIONS:
        readers.setdefault(key, []).append("degradation")
    for schedule, options in SCHEDULE_OPTIONS.items():
        for key in options:
            readers.setdefault(key, []).append(f"schedule {schedule}")
    for key in TRAIN_OPTIONS:
        readers.setdefault(key, []).append("training")
    return readers


def _reads(reader: str, cfg) -> bool:
    kind, _, name = reader.partition(" ")
    return (kind == "family" and name == cfg.family) or (kind == "field" and name == cfg.field) \
        or (kind == "schedule" and name == cfg.schedule) or kind in ("degradation", "training")


def check_options_keys(runs, source: str) -> None:
    """Refuse an ``options`` key read by nothing (a typo: the nearest key is named) or by
    none of the sweep's runs (the family or field that reads it is named)."""
    readers = option_readers()
    keys: dict[str, list] = {}
    for cfg in runs:
        for key in cfg.options or {}:
            keys.setdefault(key, []).append(cfg)
    for key, cfgs in keys.items():
        if not isinstance(key, str) or key not in readers:
            close = difflib.get_close_matches(str(key), list(readers), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else \
                f"valid keys are {', '.join(sorted(readers))}."
            raise SpecError(f"{source}: unknown key {key!r} in options; {hint}")
        if not any(_reads(r, cfg) for r in readers[key] for cfg in cfgs):
            used = sorted({f"family {c.family}" for c in cfgs} | {f"field {c.field}" for c in cfgs}
                          | {f"schedule {c.schedule}" for c in cfgs})
            raise SpecError(f"{source}: options.{key} is read only by "
                            f"{' and '.join(readers[key])}, which no run of this sweep uses "
                            f"({', '.join(used)}); remove it or change the family, field or "
                            f"schedule.")


def check_schedule_options(runs, source: str) -> None:
    """``options.decay_fraction`` is read by schedule wsd alone (a run without cooldowns; a
    trunk's branches decay over cooldown_fraction), as the fraction of the steps after
    warmup over which the rate decays: in (0, 1]."""
    for cfg in runs:
        if "decay_fraction" not in (cfg.options or {}):
            continue
        value = cfg.options["decay_fraction"]
        if cfg.schedule != "wsd" or cfg.role != "run":
            what = (f"schedule {cfg.schedule}" if cfg.schedule != "wsd" else
                    "a trunk and its branches (they decay over cooldown_fraction)")
            raise SpecError(f"{source}: options.decay_fraction is read only by schedule wsd "
                            f"without cooldowns, and this sweep gives it to {what}, which "
                            f"would ignore it; remove it or set schedule: wsd.")
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0 < value <= 1:
            raise SpecError(f"{source}: options.decay_fraction must be a fraction in (0, 1] of "
                            f"the steps after warmup (0.1-0.2 is usual), got {value!r}.")


def check_parents(runs, source: str) -> None:
    """A branch's ``parent`` names a trunk of the same sweep (else it would train from
    scratch without a word)."""
    trunks = {cfg.run_id for cfg in runs if cfg.role == "trunk"}
    for cfg in runs:
        if cfg.parent and cfg.parent not in trunks:
            raise SpecError(f"{source}: parent {cfg.parent!r} is not a trunk of this sweep "
                            f"(trunks: {', '.join(sorted(trunks)) or 'none'}); give the trunk "
                            f"cooldowns and let the sweep make its branches, or remove parent.")


def check_metric(metric, runs, source: str) -> None:
    """The spec's ``metric.name`` is one its runs will record (checked before any trains)."""
    from scalelab.runs.columns import CURVE_COLUMNS, ENSEMBLE_METRICS, SKILL_METRICS

    name = (metric or {}).get("name") if isinstance(metric, dict) else \
        getattr(metric, "name", None)  # a parsed Metric or the spec's mapping
    if name is None:
        return
    from scalelab.models.names import REGISTRY as FAMILIES

    ensembles = any(cfg.ensemble_members > 1 for cfg in runs)
    own = dict.fromkeys(m for cfg in runs if cfg.family in FAMILIES
                        for m in FAMILIES[cfg.family].metrics)  # e.g. irn's val_lr_rmse
    recorded = [*SKILL_METRICS, *(ENSEMBLE_METRICS if ensembles else ()), *own, "train_loss"]
    if name in recorded:
        return
    from scalelab.runs.columns import split_region

    base, region = split_region(name)
    if region is not None:  # a shifted region's metric (options.regions): val_crps@tropics
        shifted = sorted({r for cfg in runs for r in _shifted_regions(cfg)})
        if region not in shifted:
            raise SpecError(f"{source}: metric.name {name!r} names region {region!r}, which no "
                            f"run evaluates as a shifted region; "
                            + (f"choose one of {', '.join(shifted)}" if shifted else
                               "list it in options.regions.eval (the training region keeps "
                               "the plain names)") + ".")
        check_metric({"name": base}, runs, source)
        if base == "train_loss":
            raise SpecError(f"{source}: metric.name {name!r}: the training loss is not "
                            f"recorded per region; choose a validation metric, e.g. "
                            f"val_loss@{region}.")
        return
    if name in CURVE_COLUMNS:  # step, samples_seen, flops, ...: what a run counts, not a score
        raise SpecError(f"{source}: metric.name {name!r} is a run's count or setting, not a "
                        f"metric the laws could fit; choose one of {', '.join(recorded)}.")
    if name in ENSEMBLE_METRICS:
        raise SpecError(f"{source}: metric.name {name!r} is recorded only by ensembles, and no "
                        f"run of this sweep is one; set ensemble_members above 1 or choose "
                        f"one of {', '.join(recorded)}.")
    close = difflib.get_close_matches(str(name), recorded, n=1)
    raise SpecError(f"{source}: metric.name {name!r} is recorded by no run"
                    + (f" (did you mean {close[0]!r}?)" if close else "")
                    + f"; the runs record {', '.join(recorded)}.")


def _shifted_regions(cfg) -> tuple:
    """The shifted regions a run evaluates (``options.regions.eval`` less the training one)."""
    regions = (cfg.options or {}).get("regions")
    if not isinstance(regions, dict):
        return ()
    evals = regions.get("eval") or ()
    evals = [evals] if isinstance(evals, str) else evals
    return tuple(r for r in evals if isinstance(r, str) and r != regions.get("train"))


#: The most sampler steps a diffusion run may take per sample: Karras et al. (2022) sample
#: in 18 (Heun, 35 network evaluations) to 256 steps; 1000 is DDPM's whole chain.
MAX_SAMPLER_STEPS = 1000


def check_sampling_work(runs, source: str) -> None:
    """A generative run samples every validation field at every evaluation, ``2 ×
    sampler_steps − 1`` network evaluations each: a count that could not finish in any
    reasonable time (``sampler_steps: 100000000``) is refused, not run for days."""
    from scalelab.models.names import GENERATIVE

    for cfg in runs:
        steps = (cfg.options or {}).get("sampler_steps")
        if cfg.family in GENERATIVE and isinstance(steps, int) and not isinstance(steps, bool) \
                and steps > MAX_SAMPLER_STEPS:
            raise SpecError(f"{source}: options.sampler_steps={steps} would evaluate the network "
                            f"{2 * steps - 1:,} times per validation field at every evaluation; "
                            f"use at most {MAX_SAMPLER_STEPS} (18 is EDM's default).")


# -- memory --------------------------------------------------------------------------------
def memory_lower_bound(cfg) -> dict[str, float]:
    """Lower bounds, in bytes, of what a run holds: ``model`` (weights, gradients, optimiser
    state, stored activations of one batch) and ``data`` (every training and validation
    pair, held on the device), with ``params`` (parameter count)."""
    from scalelab.data.options import channels_of
    from scalelab.models.names import REGISTRY, params_lower_bound

    try:
        in_channels, channels = channels_of(cfg.field, cfg.options)
    except Exception:  # noqa: BLE001 - bad data options are the field check's to name
        in_channels, channels = 1, 1
    params = params_lower_bound(cfg.family, cfg.width, cfg.depth, cfg.options, in_channels)
    copies = {"adamw": 4, "adam": 4}.get(cfg.optimizer, 2)  # weights, grads (+ 2 moments)
    hr = float(cfg.field_size)
    lr = hr / cfg.scale
    family = REGISTRY[cfg.family]
    pixels = hr * hr if family.hr_grid else lr * lr  # where its blocks work
    members = 1 if family.generative else cfg.ensemble_members
    activations = cfg.batch_size * members * cfg.width * pixels * cfg.depth * BYTES
    pair = (in_channels * lr * lr + channels * hr * hr) * BYTES
    return {"params": params, "model": params * copies * BYTES + activations,
            "data": (cfg.samples + cfg.val_samples) * pair}


def machine_memory() -> int | None:
    """This machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB" if n < 1e15 else f"{n / 1e12:.3g} TB"


def check_memory(runs, source: str, limit: int | None = None, where: str = "this machine's"
                 ) -> None:
    """Refuse the first run whose lower bound of memory exceeds ``limit`` bytes (default:
    this machine's physical memory), naming the estimate and the setting to lower."""
    limit = machine_memory() if limit is None else limit
    if not limit:
        return
    seen = set()
    for cfg in runs:
        key = (cfg.family, cfg.width, cfg.depth, cfg.field, cfg.field_size, cfg.scale,
               cfg.samples, cfg.val_samples, cfg.batch_size, cfg.ensemble_members, cfg.optimizer,
               str(sorted((cfg.options or {}).items())))
        if key in seen:
            continue
        seen.add(key)
        need = memory_lower_bound(cfg)
        if need["model"] > limit:
            raise SpecError(
                f"{source}: family {cfg.family} with width={cfg.width}, depth={cfg.depth} and "
                f"batch_size={cfg.batch_size} needs at least {_gb(need['model'])} to train "
                f"(at least {need['params']:.3g} parameters with their gradients and optimiser "
                f"state, and the batch's activations), more than {where} {_gb(limit)} of "
                f"memory; choose a smaller width, depth or batch_size.")
        if need["data"] > limit:
            raise SpecError(
                f"{source}: samples={cfg.samples} and val_samples={cfg.val_samples} pairs of "
                f"{cfg.field_size}×{cfg.field_size} fields need at least {_gb(need['data'])} "
                f"held in memory, more than {where} {_gb(limit)}; use fewer samples or a "
                f"smaller field_size.")


# -- at launch -----------------------------------------------------------------------------
def _check_not_locked(store: Path) -> None:
    """A lock another process holds on an existing store, told before the sweep starts: the
    write lock is taken and let go at once (a bounded wait; nothing is written)."""
    import sqlite3

    from scalelab.runs.store import LOCK_WAIT_S, store_error

    try:
        db = sqlite3.connect(store, timeout=LOCK_WAIT_S, isolation_level=None)
    except sqlite3.Error as err:
        raise store_error(store, err, "read") from None
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
    except sqlite3.Error as err:
        raise store_error(store, err, "read") from None
    finally:
        db.close()


def check_launch(spec) -> None:
    """Before a sweep opens its store: the store can be written and is a healthy store (or
    none yet), and the devices the spec names exist (torch is imported here, not when the
    spec loads)."""
    from scalelab._errors import ScalelabError
    from scalelab._files import writable_folder

    source = str(spec.path or "the spec")
    try:
        writable_folder(spec.store, "run store", "scalelab.store or --store")
    except ScalelabError as err:
        raise SpecError(str(err)) from None
    if Path(spec.store).exists():  # a damaged, foreign or special file: refused, never written
        from scalelab.runs.store import check_is_store

        check_is_store(Path(spec.store), empty_ok=True)
        _check_not_locked(Path(spec.store))
    if spec.settings.executor != "local":
        return  # a cluster's workers have the devices, not this driver
    wanted = sorted({cfg.device for cfg in spec.runs if cfg.device.split(":")[0] in
                     ("cuda", "mps")})
    gpu_list = isinstance(spec.settings.devices, list)
    if not wanted and not gpu_list:
        return
    try:
        import torch
    except ImportError:
        raise SpecError(f"{source}: the spec asks for {wanted[0] if wanted else 'CUDA devices'} "
                        f"but torch is not installed; install torch or use device: cpu."
                        ) from None
    for device in wanted:
        kind, _, index = device.partition(":")
        if kind == "mps":
            if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
                raise SpecError(f"{source}: device {device} but torch sees no Apple MPS device; "
                                f"use device: auto or cpu.")
            continue
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise SpecError(f"{source}: device {device} but torch sees no CUDA GPU; use "
                            f"device: auto or cpu.")
        if index and (not index.isdigit() or int(index) >= count):
            raise SpecError(f"{source}: device {device} but torch sees {count} CUDA GPU(s) "
                            f"(cuda:0 to cuda:{count - 1}); use one of those, or auto.")
    if gpu_list:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        missing = [d for d in spec.settings.devices if d >= count]
        if missing:
            raise SpecError(f"{source}: scalelab.devices names CUDA device {missing[0]} but "
                            f"torch sees {count} CUDA GPU(s); use devices: auto or cpu, or "
                            f"indices below {count}.")
    if (wanted and wanted[0].startswith("cuda")) or gpu_list:
        free = min(torch.cuda.get_device_properties(i).total_memory
                   for i in range(torch.cuda.device_count()))
        check_memory([c for c in spec.runs if c.device != "cpu"], source, limit=free,
                     where="the GPU's")
