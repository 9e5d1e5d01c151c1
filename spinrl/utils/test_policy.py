"""Migration path for ``spinup.utils.test_policy``: the policy viewer lives in :mod:`spinrl.results.policy`."""

from spinrl.results.policy import load_policy, load_policy_and_env, run_policy

__all__ = ["load_policy", "load_policy_and_env", "run_policy"]
