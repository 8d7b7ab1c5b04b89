"""The pipeline's advice on a library error: the library states the fact, tasks/advice.py adds
what to do, and the command line prints both (flows/errors.explain)."""

import pickle

from flows.errors import explain
from simclr.errors import Damaged, NotFound, PipelineError
from tasks.advice import PRETRAIN_AGAIN, advised


def test_the_table_adds_what_to_do_by_what_the_error_is_about_and_its_kind():
    missing = NotFound("models/simclr-0.pt: checkpoint not found", about="checkpoint")
    damaged = Damaged("models/simclr-0.pt: damaged", about="checkpoint")
    assert advised(missing) == f"{missing}; run the pretrain stage first"
    assert advised(damaged) == f"{damaged}; {PRETRAIN_AGAIN}"
    assert explain(damaged) == advised(damaged)
    device = PipelineError("device = 'cuda' is not available", about="device")
    assert advised(device) == "params.yaml: pretrain.device = 'cuda' is not available"


def test_an_error_without_advice_is_its_own_line():
    assert advised(PipelineError("x.yaml: bad; fix it")) == "x.yaml: bad; fix it"
    assert advised(NotFound("x: missing", about="nothing we know")) == "x: missing"


def test_what_an_error_is_about_survives_a_process_boundary():
    again = pickle.loads(pickle.dumps(Damaged("x: damaged", about="prepared data")))
    assert type(again) is Damaged and again.about == "prepared data"
    assert advised(again).endswith(
        "re-run the prepare stage (dvc repro -f prepare@<dataset>) or restore it (dvc checkout)"
    )
