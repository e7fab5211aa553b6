"""prefect.yaml's deployments: each names a flow Prefect can load and parameters that flow accepts, with a brief
(or plan spec) that is in the repository and reads."""

from __future__ import annotations

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

from tasks.intake.brief import check_brief
from tasks.intake.planning.outcome import is_plan_spec
from tasks.intake.planning.spec import load_spec
from tests.support import ROOT

DEPLOYMENTS = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_a_deployment_names_a_flow_and_parameters_it_takes(deployment: dict) -> None:
    path, name = deployment["entrypoint"].split(":")
    flow = load_flow_from_entrypoint(f"{ROOT / path}:{name}")
    parameters = flow.validate_parameters(deployment["parameters"])
    brief = ROOT / parameters["brief"]
    if is_plan_spec(brief):
        assert load_spec(brief).count > 0
    else:
        check_brief(brief)
