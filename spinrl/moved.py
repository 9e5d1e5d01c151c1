"""Where the modules of earlier spinrl versions live now, so that their import paths keep working.

spinrl's modules were once side by side in ``spinrl/``; they are now grouped by job in packages.
``import spinrl.logx``, ``from spinrl.rundir import find_runs`` and the like still work. An old module
whose code moved whole is an alias of the module that holds it now (the same module object, so
monkeypatching either name patches both). An old module whose names were shared out among several
modules (``spinrl.rundir``: the run folder, the file names, config.json, status.json and reading runs) is
a stand-in that looks each name up in those modules in turn; setting a name on it sets it in the module
that holds it, so monkeypatching still reaches the code. Run folders that recorded an old dotted name
(a network class in config.json) resolve through :func:`current_name` as well.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any

# old module -> the module that holds its code now, or the modules that hold its names, looked up in order
MOVED_MODULES: dict[str, str | tuple[str, ...]] = {
    "spinrl.atari": "spinrl.envs.atari",
    "spinrl.checkpoint": "spinrl.record.checkpoint",
    "spinrl.checks": "spinrl.common.checks",
    "spinrl.compare": "spinrl.results.compare",
    "spinrl.compiled_update": "spinrl.training.compiled_update",
    "spinrl.custom_ac": "spinrl.nets.custom",
    "spinrl.device": "spinrl.common.device",
    "spinrl.encoders": ("spinrl.nets.encoders", "spinrl.envs.spaces"),
    "spinrl.errors": "spinrl.common.errors",
    "spinrl.fast_act": "spinrl.nets.fast_act",
    "spinrl.frame_buffer": "spinrl.buffers.frames",
    "spinrl.gae_buffer": "spinrl.buffers.gae",
    "spinrl.grid": ("spinrl.launch.grid", "spinrl.launch.plan"),
    "spinrl.launch_local": ("spinrl.launch.local", "spinrl.launch.child"),
    "spinrl.launch_ray": "spinrl.launch.ray",
    "spinrl.launch_zygote": "spinrl.launch.zygote",
    "spinrl.logx": (
        "spinrl.record.logger",
        "spinrl.record.console",
        "spinrl.record.progress",
        "spinrl.record.config",
        "spinrl.record.status",
        "spinrl.record.tensorboard",
        "spinrl.record.display",
        "spinrl.record.saved_policy",
        "spinrl.record.names",
    ),
    "spinrl.ls": "spinrl.results.ls",
    "spinrl.mpi": "spinrl.common.mpi",
    "spinrl.normalize": "spinrl.training.normalize",
    "spinrl.offpolicy": ("spinrl.training.offpolicy", "spinrl.envs.actions"),
    "spinrl.onpolicy": "spinrl.training.onpolicy",
    "spinrl.plot": "spinrl.results.plot",
    "spinrl.q_nets": "spinrl.nets.q_nets",
    "spinrl.replay_buffer": ("spinrl.buffers.replay", "spinrl.buffers.frames"),
    "spinrl.rng": "spinrl.common.seeding",
    "spinrl.run_lock": "spinrl.record.lock",
    "spinrl.run_spec": "spinrl.launch.spec",
    "spinrl.rundir": (
        "spinrl.record.folder",
        "spinrl.record.names",
        "spinrl.record.config",
        "spinrl.record.status",
        "spinrl.results.runs",
    ),
    "spinrl.saved_policy": "spinrl.record.saved_policy",
    "spinrl.test_policy": ("spinrl.results.policy", "spinrl.results.video", "spinrl.results.saved_network"),
    "spinrl.tracking": "spinrl.record.tracking",
    "spinrl.tune_show": "spinrl.tune.show",
    "spinrl.tune_space": "spinrl.tune.space",
    "spinrl.tune_trial": ("spinrl.tune.trial", "spinrl.record.names"),
}


def homes(old: str) -> tuple[str, ...]:
    """The modules that hold the names of the old module ``old``, in the order they are looked up."""
    home = MOVED_MODULES[old]
    return (home,) if isinstance(home, str) else home


def current_name(dotted: str) -> str:
    """``dotted`` (a module, or a module's attribute such as a class) with an old module part replaced by
    the module that holds it now; anything else unchanged."""
    module, _, rest = dotted.rpartition(".")
    if dotted in MOVED_MODULES:
        return homes(dotted)[0]
    if module in MOVED_MODULES:
        held_by = [h for h in homes(module) if hasattr(importlib.import_module(h), rest.split(".")[0])]
        return f"{(held_by or homes(module))[0]}.{rest}"
    return dotted


_ABSENT = object()


class SharedOutModule(ModuleType):
    """An old module whose names now live in several modules: each name is looked up in them in turn."""

    def __init__(self, name: str, modules: list[ModuleType]):
        super().__init__(
            name, f"Earlier spinrl's {name}: its names now live in {', '.join(m.__name__ for m in modules)}."
        )
        object.__setattr__(self, "_modules", modules)
        object.__setattr__(self, "_replaced", {})  # name -> [(module, the value it had)], see __delattr__

    def _holders(self, name: str) -> list[ModuleType]:
        """The modules that hold ``name``: the first that has it, and those that import the same object
        from it (a re-export), so that setting the name changes what every one of them reads."""
        having = [m for m in self._modules if hasattr(m, name)]
        return [m for m in having if getattr(m, name) is getattr(having[0], name)]

    def __getattr__(self, name: str) -> Any:
        if name == "__all__":  # for `from spinrl.rundir import *`: every public name of every module
            return sorted(
                {n for m in self._modules for n in getattr(m, "__all__", dir(m)) if not n.startswith("_")}
            )
        holders = [] if name.startswith("__") else self._holders(name)
        if not holders:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        return getattr(holders[0], name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("__"):  # the import system's own attributes (__spec__, __loader__, ...)
            object.__setattr__(self, name, value)
            return
        # Set where the code reads it, so that monkeypatching the old name patches the code; what was
        # there first is kept, for deleting the name again (below).
        holders = self._holders(name) or self._modules[:1]
        self._replaced.setdefault(name, [(m, m.__dict__.get(name, _ABSENT)) for m in holders])
        for module in holders:
            setattr(module, name, value)

    def __delattr__(self, name: str) -> None:
        """Delete ``name``; a name set through this module gets back what it replaced instead. (The
        stand-in's own ``__dict__`` never holds the name, so pytest's ``monkeypatch`` undoes a
        ``setattr`` by deleting it.)"""
        if name.startswith("__"):
            object.__delattr__(self, name)
            return
        replaced = self._replaced.pop(name, None)
        if replaced is not None:
            for module, value in replaced:
                if value is _ABSENT:
                    module.__dict__.pop(name, None)
                else:
                    setattr(module, name, value)
            return
        holders = self._holders(name)
        if not holders:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        for module in holders:
            delattr(module, name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()).union(*(dir(m) for m in self._modules)))


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
    module, _, name = dotted.rpartition(".")  # an old module name imports through the finder below
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


class _OldPathFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an import of an old module name with the module that holds its code now, or with a
    :class:`SharedOutModule` over the modules that hold its names."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        if fullname in MOVED_MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec) -> ModuleType:
        modules = [importlib.import_module(h) for h in homes(spec.name)]
        if len(modules) > 1:
            return SharedOutModule(spec.name, modules)
        self._own_spec = modules[0].__spec__  # the import system sets __spec__ to the alias's: put it back
        return modules[0]

    def exec_module(self, module: ModuleType) -> None:
        # The module ran when it was imported under its own name; only its own spec is restored.
        if not isinstance(module, SharedOutModule):
            module.__spec__ = self._own_spec


def install() -> None:
    """Make the old names importable (once per process)."""
    if not any(isinstance(f, _OldPathFinder) for f in sys.meta_path):
        sys.meta_path.append(_OldPathFinder())
