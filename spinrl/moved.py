"""Where the modules of earlier spinrl versions live now, so that their import paths keep working.

spinrl's modules were once side by side in ``spinrl/``; they are now grouped by job in packages.
``import spinrl.logx``, ``from spinrl.rundir import find_runs`` and the like still work: the old name
is an alias of the module that now holds the code (the same module object, so monkeypatching either name
patches both). Run folders that recorded an old dotted name (a network class in config.json) resolve
through :func:`current_name` as well.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

# old module -> the module that holds its code now
MOVED_MODULES = {
    "spinrl.atari": "spinrl.envs.atari",
    "spinrl.checkpoint": "spinrl.record.checkpoint",
    "spinrl.checks": "spinrl.common.checks",
    "spinrl.compare": "spinrl.results.compare",
    "spinrl.compiled_update": "spinrl.training.compiled_update",
    "spinrl.custom_ac": "spinrl.nets.custom",
    "spinrl.device": "spinrl.common.device",
    "spinrl.encoders": "spinrl.nets.encoders",
    "spinrl.errors": "spinrl.common.errors",
    "spinrl.fast_act": "spinrl.nets.fast_act",
    "spinrl.frame_buffer": "spinrl.buffers.frames",
    "spinrl.gae_buffer": "spinrl.buffers.gae",
    "spinrl.grid": "spinrl.launch.grid",
    "spinrl.launch_local": "spinrl.launch.local",
    "spinrl.launch_ray": "spinrl.launch.ray",
    "spinrl.launch_zygote": "spinrl.launch.zygote",
    "spinrl.logx": "spinrl.record.logger",
    "spinrl.ls": "spinrl.results.ls",
    "spinrl.mpi": "spinrl.common.mpi",
    "spinrl.normalize": "spinrl.training.normalize",
    "spinrl.offpolicy": "spinrl.training.offpolicy",
    "spinrl.onpolicy": "spinrl.training.onpolicy",
    "spinrl.plot": "spinrl.results.plot",
    "spinrl.q_nets": "spinrl.nets.q_nets",
    "spinrl.replay_buffer": "spinrl.buffers.replay",
    "spinrl.rng": "spinrl.common.seeding",
    "spinrl.run_lock": "spinrl.record.lock",
    "spinrl.run_spec": "spinrl.launch.spec",
    "spinrl.rundir": "spinrl.record.folder",
    "spinrl.saved_policy": "spinrl.record.saved_policy",
    "spinrl.test_policy": "spinrl.results.policy",
    "spinrl.tracking": "spinrl.record.tracking",
    "spinrl.tune_show": "spinrl.tune.show",
    "spinrl.tune_space": "spinrl.tune.space",
    "spinrl.tune_trial": "spinrl.tune.trial",
}


def current_name(dotted: str) -> str:
    """``dotted`` (a module, or a module's attribute such as a class) with an old module part replaced by
    the module that holds it now; anything else unchanged."""
    module, _, rest = dotted.rpartition(".")
    if dotted in MOVED_MODULES:
        return MOVED_MODULES[dotted]
    if module in MOVED_MODULES:
        return f"{MOVED_MODULES[module]}.{rest}"
    return dotted


def same_spinrl_object(a: str, b: str) -> bool:
    """Whether two dotted names of spinrl's (a class or function as config.json records it, such as
    ``spinrl.nets.MLPActorCritic`` and ``spinrl.nets.actor_critic.MLPActorCritic``) name the same object,
    through a package's re-exports and the old module names above. Only spinrl's own modules are
    imported; any other name, or one that does not resolve, compares as text."""
    if a == b:
        return True
    if not (a.startswith("spinrl.") and b.startswith("spinrl.")):
        return False
    found = [_spinrl_object(name) for name in (a, b)]
    return found[0] is not None and found[0] is found[1]


def _spinrl_object(dotted: str) -> object | None:
    module, _, name = current_name(dotted).rpartition(".")
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


class _OldPathFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an import of an old module name with the module that holds its code now."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        if fullname in MOVED_MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec) -> ModuleType:
        module = importlib.import_module(MOVED_MODULES[spec.name])
        self._own_spec = module.__spec__  # the import system sets __spec__ to the alias's: put it back
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The module ran when it was imported under its own name; only its own spec is restored.
        module.__spec__ = self._own_spec


def install() -> None:
    """Make the old names importable (once per process)."""
    if not any(isinstance(f, _OldPathFinder) for f in sys.meta_path):
        sys.meta_path.append(_OldPathFinder())
