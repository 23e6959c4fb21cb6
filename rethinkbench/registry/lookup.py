"""Finding a plugin by name: installed entry points, importing `module:attr`, and the messages
when a name is unknown, a module will not import or an attribute is missing."""
from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import traceback

from rethinkbench.base.errors import UsageError
from rethinkbench.harness.data import DATASETS
from rethinkbench.harness.models import MODELS

MODEL_GROUP = "rethinkbench.models"
DATASET_GROUP = "rethinkbench.datasets"


def entry_points(kind: str) -> list:
    """The installed entry points of the group for `kind` ("model" or "dataset"), one per
    (name, value) (a distribution seen twice on sys.path is listed once), sorted by name."""
    group = MODEL_GROUP if kind == "model" else DATASET_GROUP
    seen, out = set(), []
    for ep in importlib.metadata.entry_points(group=group):
        if (ep.name, ep.value) not in seen:
            seen.add((ep.name, ep.value))
            out.append(ep)
    return sorted(out, key=lambda ep: ep.name)


def ep_text(ep) -> str:
    dist = getattr(ep, "dist", None)
    where = f" from {dist.name} {dist.version}" if dist is not None else ""
    return f"entry point {ep.name} = {ep.value}{where}"


def unknown_message(kind: str, name: str) -> str:
    """`unknown model 'x'; built-in: ...; installed plugins: ...; to use your own: ...`."""
    builtins = MODELS if kind == "model" else DATASETS
    group = MODEL_GROUP if kind == "model" else DATASET_GROUP
    installed = [ep.name for ep in entry_points(kind)]
    if kind == "model":
        own = ("pass an import path module:factory (a function (in_shape, num_classes, width) -> "
               "nn.Module), e.g. --model mypkg.nets:resnet_small")
    else:
        own = ("pass an import path module:loader (a function (seed, root) -> rb.Dataset), e.g. "
               "--dataset mypkg.data:load, or train on an in-memory rb.Dataset with "
               "rb.train(cfg, dataset=...) and dataset='custom:<id>'")
    return (f"unknown {kind} {name!r}; {dotted_hint(kind, name)}built-in: {', '.join(builtins)}; installed plugins (entry "
            f"point group {group}): {', '.join(installed) or 'none'}. To use your own, {own}, or "
            f"register it as an entry point in the group {group} (docs/plugins.md); "
            f"`rethinkbench list` prints every name")


def import_attr(kind: str, name: str, module_name: str, attr: str):
    """`module_name`'s attribute `attr` (dotted: "Nets.small"), or a UsageError that says which
    of three things went wrong: the module is not there, the module is there but raised while
    importing (its own error and traceback: often an import inside it), or the attribute is not
    (with the module's candidates)."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise UsageError(f"{kind} plugin {name!r}: cannot import module {module_name!r} ({exc}); "
                             f"install the package that provides it, or put the folder that holds "
                             f"it on PYTHONPATH") from exc
        raise UsageError(_raised_inside(kind, name, module_name, exc)) from exc
    except Exception as exc:
        raise UsageError(_raised_inside(kind, name, module_name, exc)) from exc
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{kind} plugin {name!r}: module {module_name!r} has no attribute "
                             f"{attr!r}; {_candidates(module, part)}") from None
    return obj


def _raised_inside(kind: str, name: str, module_name: str, exc: BaseException) -> str:
    """The module exists but its import raised: the real error and the user's frames of its
    traceback (importlib's own frames dropped), not "module not found"."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith("<frozen") and f.filename != __file__]
    where = "".join(traceback.format_list(frames)).rstrip()
    return (f"{kind} plugin {name!r}: module {module_name!r} was found, but importing it raised "
            f"{type(exc).__name__}: {exc}" + (f"\nTraceback (most recent call last):\n{where}" if where else ""))


def _candidates(module, wanted: str) -> str:
    """`did you mean 'mlp2x'? its public callables: a, b, c`, from what `module` defines itself."""
    names = sorted(n for n, v in vars(module).items() if not n.startswith("_") and callable(v)
                   and getattr(v, "__module__", None) == module.__name__)
    if not names:
        return f"{module.__name__!r} defines no public function or class"
    close = difflib.get_close_matches(wanted, names, n=1)
    shown = ", ".join(names[:15]) + (f", ... ({len(names)} in all)" if len(names) > 15 else "")
    return (f"did you mean {close[0]!r}? " if close else "") + f"its public callables: {shown}"


def dotted_hint(kind: str, name: str) -> str:
    """`--model mypkg.nets.mlp2`: an import path needs a colon before the attribute."""
    if "." not in name or ":" in name or " " in name:
        return ""
    module, _, attr = name.rpartition(".")
    return f"did you mean the import path {module}:{attr} (module:attribute, with a colon)? "
