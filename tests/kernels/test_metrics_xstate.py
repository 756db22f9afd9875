"""The X-state shortcuts of the steering formula equal the general formula on X states."""

from __future__ import annotations

import numpy as np

from qbfast.kernels.metrics import (
    steering_joint_xstate,
    steering_pair,
    steering_xstate,
)


def test_xstate_steering_equals_general_formula():
    rng = np.random.default_rng(7)
    for _ in range(500):
        # populations of an X state with a coherent eg/ge block (any physical one)
        p = rng.dirichlet(np.ones(4))
        p_ee, p_eg, p_ge, p_gg = p
        coh = np.sqrt(p_eg * p_ge) * rng.uniform(-1, 1)
        nz = p_ee + p_eg - p_ge - p_gg
        sz = p_ee + p_ge - p_eg - p_gg
        cz = p_ee + p_gg - p_eg - p_ge
        c_perp = 2 * coh
        i_ab, i_ba = steering_pair(0.0, 0.0, nz, 0.0, 0.0, sz, c_perp, c_perp, cz)
        joint = steering_joint_xstate(nz, sz, c_perp, cz)
        assert abs(steering_xstate(joint, nz) - i_ab) < 1e-13
        assert abs(steering_xstate(joint, sz) - i_ba) < 1e-13
