"""spinrl.moved: the modules of earlier spinrl versions still import, with every public name they had.

The names are those each old module defined at commit 83f01e5 (before the package was regrouped into
sub-packages), and the names of the package modules that replaced ``spinrl/envs.py``, ``nets.py`` and
``tune.py``; the test fails when a later move loses one.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import spinrl
from spinrl import moved

# Old module -> the public names it had (space-separated).
OLD_PUBLIC_NAMES = {
    "spinrl.atari": (
        "ALE_ENTRY_POINT ATARI_OPTIONS AtariLearningSignals LearningSignals MAX_FRAME_SKIP MAX_FRAME_STACK "
        "MAX_NOOPS MAX_SCREEN_SIZE METADATA_KEY PressFire TEST_EPSILON TEST_GAME_FRAMES atari_env "
        "atari_options evaluation_settings is_atari_id register_atari"
    ),
    "spinrl.checkpoint": (
        "CHECKPOINT_META CheckpointError Checkpointer LEGACY_CHECKPOINT_FILE RunProgress check_contents "
        "checkpoint_path has_checkpoint is_checkpoint_epoch load_checkpoint save_checkpoint"
    ),
    "spinrl.checks": "MAX_SEED TrainingDiverged available_memory check_finite check_fits_in_memory check_hyperparameters",
    "spinrl.cli": (
        "ALGORITHMS BOOLEAN_FLAGS COMMANDS DEFAULT_SHORTHANDS LAUNCH_FLAGS OFF_POLICY SUBSTITUTIONS "
        "algorithm_help algorithm_name available_algorithms check_keys console_main main main_help "
        "parse_docstring_args parse_grid parse_grid_args parse_value run_algorithm run_as_script "
        "whole_numbers_as_int"
    ),
    "spinrl.compare": (
        "BOOTSTRAP_REPS LEVEL aggregate_metrics env_target fmt_ci interquartile_mean main optimality_gap "
        "parse_targets probability_of_improvement save_interval_figure stratified_bootstrap_ci"
    ),
    "spinrl.compiled_update": "compile_options compile_update",
    "spinrl.custom_ac": (
        "DOCS OFF_POLICY ON_POLICY SpinningUpOffPolicyAC SpinningUpPolicyGradientAC as_spinrl_actor_critic "
        "build_actor_critic"
    ),
    "spinrl.device": "resolve_device set_thread_budget",
    "spinrl.encoders": "DetachedFeatures ENCODERS NatureCNN SmallCNN image_chw image_layout is_image_space make_encoder",
    "spinrl.envs": (
        "CHECKED_ENVS_VAR EnvFn EpisodeReturns RefuseNonFinite SingleCopyVectorEnv check_spaces "
        "check_user_env default_max_ep_len env_name_of env_seeds import_env_module make_env make_env_fn "
        "make_vector_env obs_dim_of real_next_obs resolve_env_fn steps_per_copy"
    ),
    "spinrl.errors": "UserError caught_error is_interruption run_main_guarded",
    "spinrl.fast_act": "Layer numpy_policy",
    "spinrl.frame_buffer": "FrameStack FrameStackReplayBuffer frame_stack_of",
    "spinrl.gae_buffer": "GAEBuffer discount_cumsum",
    "spinrl.grid": "BACKENDS ExperimentGrid PlannedRun VALID_NAME_CHARS call_experiment planned_config valid_str",
    "spinrl.launch_local": (
        "CHILD PARENT_PID_ENV STOP_GRACE_SECONDS STOP_SIGNALS THREAD_VARIABLES child_env end_with_parent "
        "launch_variant main prepare_run_dir report_failures run_in_parallel run_with_mpi stop_children "
        "thread_budget"
    ),
    "spinrl.launch_ray": "RAY_CANCEL_GRACE_SECONDS run_on_ray run_variant_blocking",
    "spinrl.launch_zygote": "ForkedChild PRELOAD Zygote exit_without_teardown serve_forks start_early zygote_for",
    "spinrl.logx": (
        "COLORS EpochLogger Logger RunExistsError SNAPSHOTS_DIR colorize convert_json format_epoch_table "
        "live_terminal print_line read_progress setup_logger_kwargs"
    ),
    "spinrl.ls": "format_table main printable",
    "spinrl.mpi": (
        "PLAIN_OUTPUT_ENV available_cores broadcast_object gather_object mpi_avg mpi_avg_grads mpi_fork "
        "mpi_statistics_columns mpi_statistics_scalar mpi_sum mpiexec_command mpiexec_path num_procs "
        "places_ranks_elsewhere proc_id resolve_num_cpu setup_pytorch_for_mpi sync_params"
    ),
    "spinrl.nets": (
        "LOG_2PI MLPActorCritic MLPCategoricalActor MLPCritic MLPGaussianActor activation_names "
        "check_hidden_sizes count_vars mlp orthogonal_init resolve_activation shared_encoder_features "
        "with_encoder"
    ),
    "spinrl.normalize": (
        "Normalizers ObservationNormalizer RewardScaler RunningMeanStd ValueNormalizer make_normalizers "
        "observation_normalizer offpolicy_normalizers"
    ),
    "spinrl.offpolicy": (
        "ActionMap BufferCheckpoint UpdateStats frozen optimizer_steps polyak_update random_actions "
        "refuse_mpi run_test_episodes seeds_for_test_episodes"
    ),
    "spinrl.onpolicy": "anneal_learning_rate minibatch_steps",
    "spinrl.plot": (
        "BOOTSTRAP_REPS ESTIMATORS FORMATS bootstrap_mean_ci collect_runs column_for expand_logdirs "
        "group_curve keep_runs_with main make_plots select_logdirs smooth"
    ),
    "spinrl.q_nets": (
        "EnsembleLinear LOG_STD_MAX LOG_STD_MIN MLPActor MLPDeterministicActorCritic MLPQEnsemble MLPQNetwork "
        "MLPSquashedGaussianActorCritic MLPTwinActorCritic SquashedGaussianMLPActor Temperature"
    ),
    "spinrl.replay_buffer": "ReplayBuffer make_replay_buffer",
    "spinrl.rng": "rng_state seed_everything set_rng_state",
    "spinrl.run_lock": (
        "LOCK_FILE LaunchClaim RunInUseError RunLock acquire_run_lock held_locks in_use_error lock_holder "
        "pid_alive process_alive process_start_time this_process"
    ),
    "spinrl.run_spec": "decode_value encode_callable encode_value load_spec make_spec spec_module",
    "spinrl.rundir": (
        "CONFIG_FILE DamagedRunError LOG_FILE MAX_EXP_NAME_LENGTH MAY_CHANGE_ON_RESUME PROGRESS_FILE "
        "RECORDED_ON_RESUME RUN_FILES ResumeMismatchError Run RunExistsError SKIP_DIRS SPEC_FILE STATUS_FILE "
        "check_can_write check_exp_name check_same_run default_data_dir error_summary final_value find_runs "
        "holds_run load_run load_runs marks_failed_runs open_run_dir performance_column read_config "
        "read_progress read_status refuse_changes refuse_existing_run resume_changes resumed_config run_state "
        "setup_logger_kwargs warn write_status write_text_atomically"
    ),
    "spinrl.saved_policy": "describe_env describe_module recorded_env_spec saveable",
    "spinrl.test_policy": (
        "RENAMED_CLASSES VIDEO_CODECS VideoStream env_maker load_policy load_policy_and_env load_saved main "
        "record_video run_policy saved_snapshots"
    ),
    "spinrl.tracking": "DEFAULT_PROJECT TRACKING_FILE Tracker check_ready",
    "spinrl.tune": (
        "GRACE_SECONDS HEARTBEAT_SECONDS MAX_FAILURES_IN_A_ROW PRUNERS SAMPLERS TUNE_FLAGS WORKER_ENV "
        "fail_orphaned_trials finished_trials main make_settings nested objective open_study "
        "parse_command_line recorded_settings run_search search storage_url tune_help"
    ),
    "spinrl.tune_show": (
        "NOT_IN_PRESET PLOTS_DIR append_preset best_values find_study main parse_show_args preset_entry "
        "print_report rerun_command toml_value write_plots"
    ),
    "spinrl.tune_space": (
        "BUILT_IN_SPACES DISTRIBUTIONS Distribution built_in_space looks_like_distribution parse_distribution "
        "require_optuna split_space stored_choices suggest value_from_storage"
    ),
    "spinrl.tune_trial": "POLL_SECONDS STUDY_FILE StopTrial TrialFailed TrialResult TrialRunner plan_trial_runs trial_seeds",
    "spinrl.utils.logx": "EpochLogger Logger colorize convert_json setup_logger_kwargs",
    "spinrl.utils.plot": "main make_plots",
    "spinrl.utils.run_utils": "ExperimentGrid call_experiment setup_logger_kwargs valid_str",
    "spinrl.utils.test_policy": "load_policy load_policy_and_env run_policy",
}


# Public names removed on purpose, each with where the README says so. TrajectoryCollector hid the
# on-policy loop; VPG, TRPO and PPO now write it out, on the blocks of spinrl.training.onpolicy.
REMOVED_NAMES = {"spinrl.onpolicy": ["TrajectoryCollector"]}


def test_a_name_removed_on_purpose_is_gone_and_the_readme_says_what_replaces_it():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for old, names in REMOVED_NAMES.items():
        module = importlib.import_module(old)
        for name in names:
            assert not hasattr(module, name)
            assert f"`{name}`" in readme


@pytest.mark.parametrize("old", sorted(OLD_PUBLIC_NAMES))
def test_every_public_name_of_an_old_module_still_imports_from_its_old_path(old):
    module = importlib.import_module(old)
    missing = [name for name in OLD_PUBLIC_NAMES[old].split() if not hasattr(module, name)]
    assert missing == []


def test_the_list_covers_every_moved_module():
    assert set(moved.MOVED_MODULES) <= set(OLD_PUBLIC_NAMES)


def test_a_module_that_moved_whole_is_the_same_module_object():
    from spinrl.record import checkpoint

    old = importlib.import_module("spinrl.checkpoint")
    assert old is checkpoint and old.__spec__.name == "spinrl.record.checkpoint"


def test_a_module_shared_out_looks_each_name_up_where_it_lives_now():
    from spinrl.record import folder, names, status
    from spinrl.results import runs

    rundir = importlib.import_module("spinrl.rundir")
    assert isinstance(rundir, moved.SharedOutModule)
    assert rundir.setup_logger_kwargs is folder.setup_logger_kwargs
    assert rundir.PROGRESS_FILE is names.PROGRESS_FILE
    assert rundir.write_status is status.write_status
    assert rundir.find_runs is runs.find_runs
    assert "find_runs" in dir(rundir) and "find_runs" in rundir.__all__
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        rundir.no_such_name  # noqa: B018


def test_monkeypatching_an_old_name_patches_the_module_that_holds_it(monkeypatch):
    from spinrl.record import logger, progress

    logx = importlib.import_module("spinrl.logx")
    original = progress.read_progress
    monkeypatch.setattr(logx, "read_progress", "patched")
    # Set where the code reads it: in the module that defines it and in the one that re-exports it.
    assert progress.read_progress == "patched" and logger.read_progress == "patched"
    monkeypatch.undo()
    assert progress.read_progress is original and logger.read_progress is original
    assert logx.read_progress is original


def test_current_name_finds_the_module_that_holds_a_name():
    assert moved.current_name("spinrl.logx") == "spinrl.record.logger"
    assert moved.current_name("spinrl.logx.EpochLogger") == "spinrl.record.logger.EpochLogger"
    assert moved.current_name("spinrl.rundir.find_runs") == "spinrl.results.runs.find_runs"
    assert (
        moved.current_name("spinrl.nets.actor_critic.MLPActorCritic")
        == "spinrl.nets.actor_critic.MLPActorCritic"
    )


def test_star_import_and_a_fresh_process():
    code = "from spinrl.rundir import *; from spinrl.logx import *; print(find_runs.__module__, EpochLogger.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["spinrl.results.runs", "spinrl.record.logger"]
    assert spinrl.__file__  # the package under test is the one the child imports (PYTHONPATH)
