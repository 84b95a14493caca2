"""Pipelines on the Kubernetes engines: not there yet. KFP standalone is neither in the lock nor
installed, so a pipeline run fails its step with one line saying so (docs/kubernetes.md)."""

from __future__ import annotations

from kfbox.engines.platform import PipelineResult, PipelineRun, StepFailure


class KubePipelines:
    def run(self, run: PipelineRun) -> PipelineResult:
        raise StepFailure(
            f"pipeline {run.name}: the Kubernetes engines do not install Kubeflow Pipelines yet; "
            "the pipeline step runs on lite (kfp.local)")
