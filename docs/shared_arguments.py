"""Griffe extension for the API reference: an algorithm's docstring as Python sees it.

mkdocstrings reads docstrings from the source, without running it. The algorithm functions explain in
their source only what is their own; ``spinrl.algos.arguments.with_shared_argument_docs`` adds the
arguments they share with other algorithms when their module is imported. For each function that
decorator marked (``__shared_arguments__``), this extension imports the module and puts the docstring
of the imported function in place of the source's, so the reference lists every argument, as
``help()`` and ``spinrl ALGO --help`` do. Everything else is read from the source as before.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import griffe


class SharedArgumentDocs(griffe.Extension):
    def on_function(self, *, func: griffe.Function, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if not func.path.startswith("spinrl.algos.") or func.docstring is None:
            return
        try:
            module = importlib.import_module(func.module.path)
        except ImportError:
            return
        obj = getattr(module, func.name, None)
        if not getattr(obj, "__shared_arguments__", None):
            return
        imported_from = Path(inspect.getsourcefile(inspect.unwrap(obj)) or "").resolve()
        if Path(str(func.filepath)).resolve() != imported_from:
            # Another checkout's spinrl on sys.path: its docstring would not match the source shown.
            raise RuntimeError(
                f"{func.path}: the source read is {func.filepath}, but Python imports {imported_from}; "
                "build the docs with this checkout's spinrl installed (pip install -e .) or on PYTHONPATH"
            )
        old = func.docstring
        func.docstring = griffe.Docstring(
            inspect.getdoc(obj) or "",
            lineno=old.lineno,
            endlineno=old.endlineno,
            parent=func,
            parser=old.parser,
            parser_options=old.parser_options,
        )
