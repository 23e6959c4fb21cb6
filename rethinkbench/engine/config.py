"""RunConfig: everything that determines a training run, and nothing that doesn't.

Two configs with the same `key()` produce the same numbers on the same device, so the key (a hash of
the fields plus the harness version) names the run in the results cache and in results.json.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace

from rethinkbench.harness.corruptions import check_corruption
from rethinkbench.base.arguments import is_int, is_number
from rethinkbench.base.errors import UsageError
from rethinkbench.harness.models import INITS, PAPER_LR
from rethinkbench.registry import config_plugins, resolve_model

# Bump when a change to the harness changes what a config trains into: it invalidates the cache.
HARNESS_VERSION = "2"
DEVICES = ("cpu", "cuda")
# Fields added after the first release, with the default that reproduces the runs before them:
# left out of the key at that default (float defaults: the stored values are floats).
KEY_OMITS_DEFAULT = {"input_dropout": 0.0, "input_noise": 0.0, "hidden_noise": 0.0, "adversarial": 0.0,
                     "init": "torch"}
_OMITTED_WHEN_NONE = ("model_version", "dataset_version", "n_test")
# Fields left out of to_dict() (so of the key, results.json and the cache's config check) while at
# their default: a run that does not ask for them is the run it always was.
_OMITTED_AT_DEFAULT = {"track_spectral": False, "optimizer": "sgd"}
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class RunConfig:
    dataset: str = "mnist5k"
    corruption: str = "true_labels"
    level: float | None = None          # p for partial_labels
    model: str = "mlp1x512"
    width: float = 1.0                  # width multiplier (1 = the paper's model)
    seed: int = 0                       # labels, pixels, init, batch order, crops, dropout
    split_seed: int = 0                 # mnist5k's train/test split and the n_train subset
    n_train: int | None = None          # class-balanced training subset; None = all
    # Evaluate on a random n_test of the test examples (fixed by split_seed); None = all. Smoke
    # scale only: there the test pass over 1,000 digits every epoch was most of a conv run's time.
    n_test: int | None = None
    lr: float | None = None             # None = the paper's lr for the model
    # "sgd" (the paper's: momentum, weight decay) or "adam" (torch's defaults, betas 0.9/0.999,
    # eps 1e-8, L2 weight decay; `momentum` unused): Nakkiran et al.'s double descent runs.
    optimizer: str = "sgd"
    momentum: float = 0.9
    lr_decay: float = 0.95
    decay_steps: int = 390              # one CIFAR-10 epoch at batch 128, whatever the data size
    batch_size: int = 128
    weight_decay: float = 0.0
    random_crop: bool = False
    dropout: float = 0.0
    # Arpit et al. §5's other regularizers (regularizers.py), all off by default:
    input_dropout: float = 0.0          # probability of zeroing each input pixel
    input_noise: float = 0.0            # std of Gaussian noise added to inputs (standardized units)
    hidden_noise: float = 0.0           # std of Gaussian noise added after every ReLU
    adversarial: float = 0.0            # weight w of the adversarial loss: (1-w) CE(x) + w CE(x_adv)
    init: str = "torch"                 # "torch" (PyTorch's), "glorot_uniform" (TF's), "kaiming_normal"
    max_epochs: int = 100
    max_steps: int | None = None
    stop_at_fit: bool = True            # stop once the full training set is classified 100%
    stall_epochs: int | None = 25       # stop once the loss sat at ln(K) (chance) this many epochs
    track_subsets: bool = False         # full train pass each epoch: accuracy on clean / corrupted
    record_per_example: bool = False    # store which training examples are right at the end
    # Every epoch, record the Lipschitz bound prod_i rho_i ||A_i||_sigma, the spectral complexity
    # R_A (reference 0) and the 5th-percentile training margin (measures/tracking.py; Bartlett et
    # al. 2017, Fig. 1). Networks the measures support only (chains of Linear/Conv2d/ReLU/...).
    track_spectral: bool = False
    device: str = "cpu"
    # A plugin model's / dataset's version (rethinkbench/registry): looked up when the config is
    # built, part of the cache key, so changed plugin code retrains. None for built-in names, and
    # then left out of to_dict() and the key (built-in keys are unchanged).
    model_version: str | None = None
    dataset_version: str | None = None

    def __post_init__(self):
        check = lambda ok, msg: None if ok else (_ for _ in ()).throw(UsageError(msg))
        check(isinstance(self.dataset, str), f"dataset must be a name (str), got {self.dataset!r}")
        check(isinstance(self.device, str), f"device must be a name like 'cpu' or 'cuda', got {self.device!r}")
        # Names: built in, custom:<id>, or a plugin (an unknown name lists the built-ins and how to
        # register one); a plugin model without an lr takes its factory's default_lr.
        versions = config_plugins(self.model, self.model_version, self.dataset, self.dataset_version, self.lr)
        for name, value in zip(("model_version", "dataset_version", "lr"), versions):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "level", check_corruption(self.corruption, self.level))
        check(is_number(self.width) and self.width > 0, f"width must be > 0, got {self.width!r}")
        check(is_int(self.seed), f"seed must be an integer, got {self.seed!r}")
        check(is_int(self.split_seed), f"split_seed must be an integer, got {self.split_seed!r}")
        for flag in ("random_crop", "stop_at_fit", "track_subsets", "record_per_example", "track_spectral"):
            check(isinstance(getattr(self, flag), bool), f"{flag} must be True or False, got {getattr(self, flag)!r}")
        check(self.n_train is None or (is_int(self.n_train) and self.n_train > 0),
              f"n_train must be a positive integer or None, got {self.n_train!r}")
        check(self.n_test is None or (is_int(self.n_test) and self.n_test > 0),
              f"n_test must be a positive integer or None, got {self.n_test!r}")
        check(self.lr is None or (is_number(self.lr) and self.lr > 0), f"lr must be > 0, got {self.lr!r}")
        check(is_number(self.momentum) and 0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum!r}")
        check(is_number(self.lr_decay) and 0 < self.lr_decay <= 1, f"lr_decay must be in (0, 1], got {self.lr_decay!r}")
        check(is_int(self.decay_steps) and self.decay_steps > 0, f"decay_steps must be > 0, got {self.decay_steps!r}")
        check(is_int(self.batch_size) and self.batch_size > 0, f"batch_size must be > 0, got {self.batch_size!r}")
        check(is_number(self.weight_decay) and self.weight_decay >= 0,
              f"weight_decay must be >= 0, got {self.weight_decay!r}")
        check(is_number(self.dropout) and 0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout!r}")
        check(is_number(self.input_dropout) and 0 <= self.input_dropout < 1,
              f"input_dropout must be in [0, 1), got {self.input_dropout!r}")
        for name in ("input_noise", "hidden_noise"):
            value = getattr(self, name)
            check(is_number(value) and value >= 0, f"{name} must be a std >= 0, got {value!r}")
        check(is_number(self.adversarial) and 0 <= self.adversarial <= 1,
              f"adversarial must be a loss weight in [0, 1], got {self.adversarial!r}")
        check(self.init in INITS, f"unknown init {self.init!r}; known: {', '.join(INITS)}")
        check(self.optimizer in OPTIMIZERS,
              f"unknown optimizer {self.optimizer!r}; known: {', '.join(OPTIMIZERS)}")
        check(is_int(self.max_epochs) and self.max_epochs > 0, f"max_epochs must be > 0, got {self.max_epochs!r}")
        check(self.max_steps is None or (is_int(self.max_steps) and self.max_steps > 0),
              f"max_steps must be a positive integer or None, got {self.max_steps!r}")
        check(self.stall_epochs is None or (is_int(self.stall_epochs) and self.stall_epochs > 0),
              f"stall_epochs must be a positive integer or None, got {self.stall_epochs!r}")
        check(self.device in DEVICES or self.device.startswith("cuda:"),
              f"unknown device {self.device!r}; known: cpu, cuda, cuda:N")
        check(not (self.random_crop and self.corruption in ("shuffled_pixels", "random_pixels", "gaussian")),
              f"random_crop cannot be combined with {self.corruption!r}: cropping would move the "
              f"randomized pixels (the paper runs randomized inputs without augmentation)")
        # 1 and 1.0 are the same config: store floats as floats so equal configs share a key.
        for name in ("width", "momentum", "lr_decay", "weight_decay", "dropout", "input_dropout", "input_noise",
                     "hidden_noise", "adversarial"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if self.lr is not None:
            object.__setattr__(self, "lr", float(self.lr))

    @property
    def effective_lr(self) -> float:
        return self.lr if self.lr is not None else PAPER_LR[self.model]

    def replace(self, **changes) -> "RunConfig":
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise UsageError(f"unknown RunConfig field(s) {sorted(unknown)}; known: "
                             f"{', '.join(f.name for f in fields(self))}")
        # A new model or dataset name gets its own plugin version (and a plugin model its own
        # default lr, unless this config's lr was set by hand); see registry.config_plugins.
        for name, version in (("model", "model_version"), ("dataset", "dataset_version")):
            if name in changes and changes[name] != getattr(self, name):
                changes.setdefault(version, None)
        if "model_version" in changes and changes["model_version"] is None and "lr" not in changes:
            if self.model_version is not None and self.lr == resolve_model(self.model).default_lr:
                changes["lr"] = None
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        for name in _OMITTED_WHEN_NONE:   # built-in configs keep the dict (and key) they always had
            if d[name] is None:
                del d[name]
        for name, default in _OMITTED_AT_DEFAULT.items():
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return cls(**d)

    def key(self) -> str:
        """Stable cache key: the fields (sorted, JSON) plus the harness version. Fields added after
        the first release are left out while at their default, so older runs keep their keys."""
        d = self.to_dict()
        for name, default in KEY_OMITS_DEFAULT.items():
            if d[name] == default:
                del d[name]
        blob = json.dumps({"harness": HARNESS_VERSION, **d}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def label(self) -> str:
        """Short human-readable name for progress bars and tables."""
        corr = self.corruption + (f"({self.level:g})" if self.level is not None else "")
        extras = [f"w{self.width:g}" if self.width != 1 else "", "crop" if self.random_crop else "",
                  f"wd{self.weight_decay:g}" if self.weight_decay else "",
                  f"drop{self.dropout:g}" if self.dropout else "",
                  f"indrop{self.input_dropout:g}" if self.input_dropout else "",
                  f"innoise{self.input_noise:g}" if self.input_noise else "",
                  f"hidnoise{self.hidden_noise:g}" if self.hidden_noise else "",
                  f"adv{self.adversarial:g}" if self.adversarial else "",
                  {"glorot_uniform": "glorot", "kaiming_normal": "he"}.get(self.init, ""),
                  self.optimizer if self.optimizer != "sgd" else "",
                  f"n{self.n_train}" if self.n_train else ""]
        return " ".join([self.model, corr, *[e for e in extras if e], f"seed{self.seed}"])

