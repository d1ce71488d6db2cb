"""Keras optimizers whose hyperparameters are optimizer variables (`training.vectorize: program`).

Keras 3 keeps only `iterations` and a float `learning_rate` as optimizer variables; SGD's
`momentum`, Adam's `beta_1` and AdamW's `weight_decay` are Python floats traced into the
compiled step. A population vmaps the optimizer's variables, one row per member, so a member's
momentum, β₁ or weight decay must be a variable too for members that differ there to share one
program. These subclasses hold them as variables and repeat Keras' own update with the variable
in place of the float, operation for operation, so a member's numbers are the trial's trained
alone with the stock optimizer:

- `ops.cast(self.momentum, float32)` of a Python float and a float32 variable holding it are the
  same number;
- Adam's `1 - self.beta_1` is computed in float64 and rounded once when it meets a float32
  tensor; a float32 `1 - beta_1` would round twice (0.1 becomes 0.100000024), so `1 - beta_1`
  is its own variable, computed in float64 when set;
- SGD keeps its momentum slots even at momentum 0, where `m = 0·m − g·lr; w += m` is exactly
  the stock `w −= g·lr`.

RMSprop's and Adagrad's settings are not in the config (only their learning rate, already a
variable), and Adam's β₂ and ε stay at Keras' defaults: nothing of theirs varies in a grid.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from mlpsuite.config import OptimizerSpec

HELD = {  # the optimizers whose baked-in settings a population holds as variables
    "momentum": ("momentum",),
    "nesterov": ("momentum",),
    "adam": ("beta_1",),
    "adamw": ("beta_1", "weight_decay"),
}


def held_values(spec: OptimizerSpec) -> dict[str, float]:
    """The variables' values for `spec`, by variable name (empty for an optimizer that holds
    none)."""
    values: dict[str, float] = {}
    for name in HELD.get(spec.name, ()):
        values[name] = float(getattr(spec, name))
        if name == "beta_1":  # rounded from float64 once, as Keras' Python `1 - beta_1` is
            values["one_minus_beta_1"] = 1.0 - spec.beta_1
    return values


class Held:
    """The variables: made in `build` after the optimizer's own, set per member by `hold`."""

    held: dict[str, Any]
    _initial: dict[str, float]

    def _make_held(self) -> None:
        optimizer: Any = self
        self.held = {
            name: optimizer.add_variable(
                (), initializer=keras.initializers.Constant(value), name=name
            )
            for name, value in self._initial.items()
        }

    def hold(self, spec: OptimizerSpec) -> None:
        """Set the variables to `spec`'s values (a reused model's next trial)."""
        for name, value in held_values(spec).items():
            self.held[name].assign(value)


class HeldSGD(Held, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with momentum (or Nesterov momentum) as a variable."""

    def __init__(self, spec: OptimizerSpec, learning_rate: Any, nesterov: bool):
        super().__init__(learning_rate, momentum=spec.momentum, nesterov=nesterov)
        self._initial = held_values(spec)

    def build(self, variables):
        """Keras' SGD slots, with a momentum slot even at momentum 0 (it may change), and the
        held variables."""
        if self.built:
            return
        keras.optimizers.Optimizer.build(self, variables)  # SGD's own skips the slots at 0
        self.momentums = self.add_optimizer_variables(variables, "momentum")
        self._make_held()

    def update_step(self, gradient, variable, learning_rate):
        """Keras' SGD momentum update, the momentum read from its variable."""
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        m = self.momentums[self._get_variable_index(variable)]
        momentum = ops.cast(self.held["momentum"], variable.dtype)
        self.assign(
            m, ops.subtract(ops.multiply(m, momentum), ops.multiply(gradient, learning_rate))
        )
        if self.nesterov:
            self.assign_add(
                variable,
                ops.subtract(ops.multiply(m, momentum), ops.multiply(gradient, learning_rate)),
            )
        else:
            self.assign_add(variable, m)


class HeldAdam(Held, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with β₁ (and 1 − β₁) as variables."""

    def __init__(self, spec: OptimizerSpec, learning_rate: Any):
        super().__init__(learning_rate, beta_1=spec.beta_1)
        self._initial = held_values(spec)

    def build(self, var_list):
        """Keras' Adam slots and the held variables."""
        if self.built:
            return
        super().build(var_list)
        self._make_held()

    def update_step(self, gradient, variable, learning_rate):
        """Keras' Adam update (without amsgrad), β₁ read from its variables."""
        # Typed as Any: Keras annotates these ops' results as possibly None.
        lr: Any = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        iterations: Any = self.iterations
        local_step = ops.cast(iterations + 1, variable.dtype)
        beta_1_power: Any = ops.power(ops.cast(self.held["beta_1"], variable.dtype), local_step)
        beta_2_power: Any = ops.power(ops.cast(self.beta_2, variable.dtype), local_step)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        one_minus_beta_1 = ops.cast(self.held["one_minus_beta_1"], variable.dtype)
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), one_minus_beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        self.assign_sub(
            variable, ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), self.epsilon))
        )


class HeldAdamW(HeldAdam):
    """`keras.optimizers.AdamW`'s decoupled weight decay on `HeldAdam`, the decay a variable.

    AdamW is Adam with `weight_decay` set (Keras' AdamW adds nothing else), so this is HeldAdam
    constructed with it, and Keras' `_apply_weight_decay` with the decay read from its variable.
    """

    def __init__(self, spec: OptimizerSpec, learning_rate: Any):
        keras.optimizers.Adam.__init__(
            self, learning_rate, beta_1=spec.beta_1, weight_decay=spec.weight_decay
        )
        self._initial = held_values(spec)

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None:
            return
        for variable in variables:
            if self._use_weight_decay(variable):
                lr = ops.cast(self.learning_rate, variable.dtype)
                wd = ops.cast(self.held["weight_decay"], variable.dtype)
                variable.assign(variable - variable * wd * lr)


def held_optimizer(spec: OptimizerSpec, learning_rate: Any) -> keras.optimizers.Optimizer | None:
    """The optimizer of `spec` with its settings as variables, or None when it holds none (its
    stock Keras class already keeps every setting a grid varies, the learning rate, as one)."""
    if spec.name in ("momentum", "nesterov"):
        return HeldSGD(spec, learning_rate, nesterov=spec.name == "nesterov")
    if spec.name == "adam":
        return HeldAdam(spec, learning_rate)
    if spec.name == "adamw":
        return HeldAdamW(spec, learning_rate)
    return None
