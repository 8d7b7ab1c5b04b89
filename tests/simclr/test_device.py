"""The precision a run gets: one bf16 check decides both `auto` and an explicit `bf16`."""

import pytest
import torch

import simclr.device
from flows.errors import explain
from simclr.device import autocast_dtype, bf16_supported
from simclr.errors import PipelineError

CPU = torch.device("cpu")


def test_auto_is_bf16_exactly_where_the_hardware_has_it():
    expected = torch.bfloat16 if bf16_supported(CPU) else None
    assert autocast_dtype("auto", CPU) == expected
    assert autocast_dtype("fp32", CPU) is None
    assert bf16_supported(torch.device("mps"))  # Apple GPUs compute in bf16
    assert not bf16_supported(torch.device("meta"))  # anything else does not


@pytest.mark.parametrize("supported", [True, False])
def test_auto_and_bf16_follow_the_one_check(monkeypatch, supported):
    """A CPU without bf16 is simulated by the check itself: auto falls back to fp32 and an
    explicit bf16 is a one-line error, never a slow emulation."""
    monkeypatch.setattr(simclr.device, "bf16_supported", lambda device: supported)
    assert autocast_dtype("auto", CPU) == (torch.bfloat16 if supported else None)
    if supported:
        assert autocast_dtype("bf16", CPU) == torch.bfloat16
    else:
        with pytest.raises(PipelineError, match=r"^precision = 'bf16' is ") as e:
            autocast_dtype("bf16", CPU)
        assert explain(e.value).startswith("params.yaml: pretrain.precision = 'bf16' is ")


def test_fp16_needs_a_gpu():
    with pytest.raises(PipelineError, match="'fp16' needs a GPU; use bf16 or fp32 on CPU"):
        autocast_dtype("fp16", CPU)
