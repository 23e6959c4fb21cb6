"""Scale profiles: the only thing that differs between a seconds-long smoke run, the default cpu
run and the paper-scale GPU run is the numbers in the RunConfigs these profiles build.

- smoke: seconds; exists for the harness's own tests (tiny subsets and widths, 200 test digits).
- cpu:   the default `pytest claims/`: 2 CPU cores, minutes. mnist5k (4,000 train / 1,000 test).
         MLPs at the paper's width on all 4,000 digits; conv nets narrowed (small AlexNet at 1/4
         width, small Inception at 1/8) on a class-balanced 500, because on two cores a full-width
         small Inception costs ~7 s an epoch on 4,000 images. lr decay still per 390 steps.
         The conv net of the Fig. 1 claims is small Inception, as in the paper's Fig. 1.
- paper: `--gpu`: CIFAR-10 (50k/10k), the paper's models at full width, batch 128.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from rethinkbench.base.errors import UsageError
from rethinkbench.engine.config import RunConfig
from rethinkbench.harness.models import MODELS
from rethinkbench.registry import resolve_model


@dataclass(frozen=True)
class ModelSetting:
    width: float = 1.0
    n_train: int | None = None
    max_epochs: int = 100


@dataclass(frozen=True)
class ScaleProfile:
    name: str
    dataset: str
    device: str
    models: dict = field(default_factory=dict)   # model name -> ModelSetting
    conv_model: str = "alexnet_small"            # "a conv net" where a claim needs one
    default_seeds: int = 1
    description: str = ""
    n_test: int | None = None                    # test examples evaluated each epoch; None = all

    def setting(self, model: str) -> ModelSetting:
        if model in self.models:
            return self.models[model]
        if model not in MODELS:   # a plugin model: its own width, PLUGIN_SETTINGS' data and budget
            resolve_model(model)  # an unknown name: the registry's message (built-ins, how to add one)
            return PLUGIN_SETTINGS.get(self.name, ModelSetting())
        return ModelSetting()

    def config(self, *, model: str = "mlp1x512", dataset: str | None = None, device: str | None = None,
               **overrides) -> RunConfig:
        """The RunConfig of `model` at this scale, with `overrides` applied on top."""
        s = self.setting(model)
        base = dict(dataset=dataset or self.dataset, model=model, width=s.width, n_train=s.n_train,
                    max_epochs=s.max_epochs, device=device or self.device, n_test=self.n_test)
        base.update(overrides)
        return RunConfig(**base)

    def with_device(self, device: str) -> "ScaleProfile":
        return replace(self, device=device)

    def with_model(self, model: str, n_available: int | None = None) -> "ScaleProfile":
        """This scale for a session on plugin model `model` (--model): its setting from
        PLUGIN_SETTINGS (the whole training set when it has no more than `n_available` examples),
        and it is "the conv net" of the claims that need one (protocols.table1_n_train)."""
        s = PLUGIN_SETTINGS.get(self.name, ModelSetting())
        if s.n_train is not None and n_available is not None and n_available <= s.n_train:
            s = replace(s, n_train=None)
        return replace(self, models={**self.models, model: s}, conv_model=model)


_CONV_CPU = dict(alexnet_small=ModelSetting(width=0.25, n_train=500, max_epochs=300),
                 inception_small=ModelSetting(width=0.125, n_train=500, max_epochs=300),
                 inception_small_nobn=ModelSetting(width=0.125, n_train=500, max_epochs=300))

SCALES: dict[str, ScaleProfile] = {
    "smoke": ScaleProfile(
        "smoke", "mnist5k", "cpu", default_seeds=1, conv_model="inception_small", description="seconds; for the harness's own tests",
        # 200 test digits: the test pass over all 1,000 every epoch was ~85% of a smoke conv run.
        n_test=200,
        models=dict(mlp1x512=ModelSetting(width=0.25, n_train=200, max_epochs=60),
                    mlp3x512=ModelSetting(width=0.25, n_train=200, max_epochs=60),
                    alexnet_small=ModelSetting(width=0.125, n_train=100, max_epochs=60),
                    inception_small=ModelSetting(width=0.0625, n_train=64, max_epochs=60),
                    inception_small_nobn=ModelSetting(width=0.0625, n_train=64, max_epochs=60))),
    "cpu": ScaleProfile(
        "cpu", "mnist5k", "cpu", default_seeds=3, conv_model="inception_small",
        description="embedded real MNIST (4,000/1,000), MLPs at full width, narrowed conv nets",
        models=dict(mlp1x512=ModelSetting(max_epochs=300), mlp3x512=ModelSetting(max_epochs=300),
                    **_CONV_CPU)),
    "paper": ScaleProfile(
        "paper", "cifar10", "cuda", default_seeds=1, conv_model="inception_small",
        description="CIFAR-10 (50k/10k), the paper's models and hyperparameters",
        models={m: ModelSetting(max_epochs=200) for m in MODELS}),
}


# A plugin model (--model module:factory or an entry point) at each scale: width 1 (the factory's
# own network), every training example at cpu and paper scale as the MLPs have, 200 at smoke.
PLUGIN_SETTINGS = {"smoke": ModelSetting(n_train=200, max_epochs=60),
                   "cpu": ModelSetting(max_epochs=300),
                   "paper": ModelSetting(max_epochs=200)}


def get_scale(name: str) -> ScaleProfile:
    if name not in SCALES:
        raise UsageError(f"unknown scale {name!r}; known: {', '.join(SCALES)}")
    return SCALES[name]
