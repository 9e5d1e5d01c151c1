"""A run as plain JSON data, so that another process (an MPI rank, a parallel child, a Ray task) can start it.

A run spec is ``{"thunk": {"__callable__": "module:function"}, "kwargs": {...}}``. Classes and functions
travel by name (``{"__callable__": "torch.nn:Tanh"}``), environment factories by their Gymnasium id
(with their ``env_kwargs`` when they have some: ``{"__env__": "ALE/Pong-v5", "kwargs": {...}}``), and
everything else as JSON literals. Nothing is pickled: reading a spec runs no code but the import of the
modules it names. JSON has no tuples, so ``(64, 64)`` comes back as ``[64, 64]``; the arguments that
take sizes accept either.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spinrl.common.errors import UserError


def encode_callable(obj: Callable) -> dict[str, str]:
    """``{"__callable__": "module:qualname"}`` for an importable class or function.

    Functions defined in the script being run (module ``__main__``) are named by the script's path;
    the child imports that file under another name, so its ``if __name__ == "__main__":`` block does
    not launch the grid again.
    """
    module, qualname = obj.__module__, obj.__qualname__
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if "<" in qualname or (module == "__main__" and not main_file):
        raise UserError(
            f"{obj!r} cannot be sent to another process: use a Gymnasium id string or a function "
            "defined at the top level of a module or script"
        )
    if module == "__main__":
        module = "file:" + os.path.abspath(main_file)
    return {"__callable__": f"{module}:{qualname}"}


def encode_value(v: Any) -> Any:
    """A keyword-argument value as JSON-safe data (see the module docstring for the rules)."""
    if isinstance(v, dict):
        return {k: encode_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [encode_value(x) for x in v]
    if callable(v) and hasattr(v, "env_name"):  # env factories made by spinrl.envs.make_env_fn
        kwargs = getattr(v, "env_kwargs", None)
        return {"__env__": v.env_name, "kwargs": encode_value(kwargs)} if kwargs else v.env_name
    if inspect.isclass(v) or inspect.isfunction(v):
        return encode_callable(v)
    return v


def decode_value(v: Any) -> Any:
    """The inverse of :func:`encode_value`: named callables are imported, the rest comes back as it is."""
    if isinstance(v, dict) and set(v) == {"__env__", "kwargs"}:
        from spinrl.envs.make import make_env_fn

        return make_env_fn(v["__env__"], **v["kwargs"])
    if isinstance(v, dict) and set(v) == {"__callable__"}:
        module, qualname = v["__callable__"].rsplit(":", 1)
        obj: Any = _import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj
    if isinstance(v, dict):
        return {k: decode_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode_value(x) for x in v]
    return v


def make_spec(thunk: Callable, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The spec of the run ``thunk(**kwargs)``."""
    return {"thunk": encode_callable(thunk), "kwargs": encode_value(kwargs)}


def spec_module(spec: dict[str, Any]) -> str:
    """The module the spec's algorithm comes from (``file:PATH`` for a script)."""
    return spec["thunk"]["__callable__"].rsplit(":", 1)[0]


def load_spec(path: str | os.PathLike) -> tuple[Callable, dict[str, Any]]:
    """Read a spec file and return the algorithm and its keyword arguments, ready to call."""
    try:
        spec = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the run spec {path}: {e}") from None
    return decode_value(spec["thunk"]), decode_value(spec["kwargs"])


def _import_module(module: str) -> Any:
    if not module.startswith("file:"):
        return importlib.import_module(module)
    path = module[len("file:") :]
    # Under a name of its own, never "__main__": the script's main block must not run again here.
    name = "spinrl_user_script_" + re.sub(r"\W", "_", Path(path).stem)
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise UserError(f"cannot import {path}: it is not a Python file")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]
