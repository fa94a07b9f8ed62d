"""Sigma schedules and guidance arithmetic against the reference."""

from __future__ import annotations

import pytest
import torch
from ltx_core.components.guiders import MultiModalGuider, MultiModalGuiderParams
from ltx_core.components.schedulers import LTX2Scheduler
from ltx_pipelines.utils import constants as ref_constants

from ltx_av.ltx_core.errors import InputError
from ltx_av.ltx_core.guidance import GuidanceParams, default_guidance, default_steps, guided_x0
from ltx_av.ltx_core.schedules import DISTILLED_SIGMAS, STAGE2_SIGMAS, ltx2_sigmas, validate_sigmas

from reference import ltx_core_ref  # noqa: F401


@pytest.mark.parametrize("steps", [1, 3, 8, 20, 30, 40])
@pytest.mark.parametrize("tokens", [None, 96, 1024, 6144, 36_864])
@pytest.mark.parametrize("stretch", [True, False])
def test_ltx2_sigmas_equal_the_reference(steps, tokens, stretch):
    latent = None if tokens is None else torch.zeros(1, 128, tokens, 1, 1)
    expected = LTX2Scheduler().execute(steps, latent, stretch=stretch)
    got = ltx2_sigmas(steps, tokens, stretch=stretch)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    if torch.isnan(expected).any():  # the reference divides by zero for a single step from sigma exactly 1
        assert steps == 1 and got.tolist() == [1.0, 0.0]
    else:
        assert torch.equal(got, expected)


def test_eight_step_example_and_distilled_lists():
    assert [round(s, 5) for s in ltx2_sigmas(8).tolist()] == [
        1.0,
        0.96571,
        0.92187,
        0.86386,
        0.78345,
        0.66458,
        0.471,
        0.1,
        0.0,
    ]
    assert list(DISTILLED_SIGMAS) == ref_constants.DISTILLED_SIGMA_VALUES
    assert list(STAGE2_SIGMAS) == ref_constants.STAGE_2_DISTILLED_SIGMA_VALUES


def test_custom_sigmas_are_validated():
    assert validate_sigmas([1.0, 0.5, 0.0]).tolist() == [1.0, 0.5, 0.0]
    with pytest.raises(InputError, match="must decrease from start to end; value 2 \\(0.7\\) follows 0.5"):
        validate_sigmas([1.0, 0.5, 0.7])
    with pytest.raises(InputError, match="at least two values"):
        validate_sigmas([1.0])
    with pytest.raises(InputError, match="must lie in \\[0, 1\\]"):
        validate_sigmas([1.5, 0.0])


def test_defaults_follow_the_reference_per_version():
    video, audio = default_guidance("LTX-2")
    ref = ref_constants.LTX_2_PARAMS
    for ours, theirs in ((video, ref.video_guider_params), (audio, ref.audio_guider_params)):
        assert (ours.cfg, ours.stg, list(ours.stg_blocks), ours.modality, ours.rescale) == (
            theirs.cfg_scale,
            theirs.stg_scale,
            theirs.stg_blocks,
            theirs.modality_scale,
            theirs.rescale_scale,
        )
    assert default_guidance("LTX-2.3")[0].stg_blocks == tuple(
        ref_constants.LTX_2_3_PARAMS.video_guider_params.stg_blocks
    )
    assert (default_steps("LTX-2"), default_steps("LTX-2.3")) == (40, 30)


@pytest.mark.parametrize(
    "params",
    [
        GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=(1,), modality=3.0, rescale=0.7),
        GuidanceParams(cfg=7.0, stg=0.0, modality=1.0, rescale=0.0),
        GuidanceParams(cfg=1.0, stg=1.0, stg_blocks=(0,), modality=2.0, rescale=1.0),
    ],
)
def test_guided_x0_matches_the_reference_guider(params):
    g = torch.Generator().manual_seed(0)
    cond, uncond, perturbed, isolated = (torch.randn(2, 50, 128, generator=g) for _ in range(4))
    ref = MultiModalGuider(
        MultiModalGuiderParams(
            cfg_scale=params.cfg,
            stg_scale=params.stg,
            stg_blocks=list(params.stg_blocks),
            rescale_scale=params.rescale,
            modality_scale=params.modality,
        )
    )
    expected = ref.calculate(
        cond,
        uncond if ref.do_unconditional_generation() else 0.0,
        perturbed if ref.do_perturbed_generation() else 0.0,
        isolated if ref.do_isolated_modality_generation() else 0.0,
    )
    got = guided_x0(
        params,
        cond,
        uncond if params.needs_uncond else None,
        perturbed if params.needs_perturbed else None,
        isolated if params.needs_isolated else None,
    )
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)
    assert params.needs_uncond == ref.do_unconditional_generation()
    assert params.needs_isolated == ref.do_isolated_modality_generation()
