"""`inatvision compile-kubeflow` and `inatvision submit-kubeflow` (registered in pipeline/cli.py)."""
from __future__ import annotations

import json
import os
import sys

import click

from inatvision.kubeflow import runner


@click.command("compile-kubeflow")
@click.option("--target", type=click.Choice(runner.TARGETS), required=True,
              help="kfp: open-source Kubeflow Pipelines 2.x; vertex: Vertex AI Pipelines")
@click.option("--image", required=True, help="the pushed pipeline image (Dockerfile), e.g. REGISTRY/inatvision:TAG")
@click.option("--out", required=True, help="the spec to write: .yaml (kfp, vertex) or .json (vertex PipelineJob)")
@click.option("--profile", default="production", show_default=True, help="demo or production")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="compile-time override, e.g. --set beam.runner=DataflowRunner (repeatable)")
@click.option("--root", default=runner.DEFAULT_ROOT, show_default=True,
              help="gs:// home of the pipeline: ROOT/artifacts (pipeline root) and ROOT/releases (push destination)")
@click.option("--pipeline-root", default=None, help="default pipeline root [ROOT/artifacts]; a run may replace it")
@click.option("--destination", default=None,
              help="default push destination [push.destination, else ROOT/releases]; a run may replace it")
@click.option("--export", "export_dir", default="", help="default export folder (gs://); usually given per run")
@click.option("--photo-root", default="", help="default photos/ root if not inside the export (gs://)")
@click.option("--data-cpu", type=float, default=runner.KubeflowConfig.data_cpu, show_default=True,
              help="CPUs for export, statistics, Transform, Evaluator")
@click.option("--data-memory-gb", type=float, default=runner.KubeflowConfig.data_memory_gb, show_default=True)
@click.option("--trainer-cpu", type=float, default=runner.KubeflowConfig.trainer_cpu, show_default=True)
@click.option("--trainer-memory-gb", type=float, default=runner.KubeflowConfig.trainer_memory_gb, show_default=True)
@click.option("--gpus", type=int, default=runner.KubeflowConfig.gpus, show_default=True, help="GPUs for the Trainer")
@click.option("--accelerator", default="",
              help="kfp: Kubernetes resource [nvidia.com/gpu]; vertex: accelerator type [NVIDIA_TESLA_V100]")
@click.option("--step-cpu", type=float, default=runner.KubeflowConfig.step_cpu, show_default=True,
              help="CPUs for the light steps")
@click.option("--step-memory-gb", type=float, default=runner.KubeflowConfig.step_memory_gb, show_default=True)
@click.option("--gpu-node-selector", multiple=True, metavar="LABEL=VALUE",
              help="kfp only: node label the Trainer's pod must match, e.g. "
                   "cloud.google.com/gke-accelerator=nvidia-tesla-v100 (repeatable)")
@click.option("--trainer-workers", type=int, default=1, show_default=True,
              help="vertex only: train on this many machines (a Vertex AI custom job; needs export.num_shards >= it)")
@click.option("--vertex-project", default="", help="vertex, with --trainer-workers: the custom job's project")
@click.option("--vertex-region", default=runner.KubeflowConfig.vertex_region, show_default=True)
@click.option("--trainer-machine-type", default=runner.KubeflowConfig.trainer_machine_type, show_default=True,
              help="vertex, with --trainer-workers: the machine of each worker")
def compile_kubeflow(target, image, out, profile, overrides, root, pipeline_root, destination, export_dir, photo_root,
                     data_cpu, data_memory_gb, trainer_cpu, trainer_memory_gb, gpus, accelerator, step_cpu,
                     step_memory_gb, gpu_node_selector, trainer_workers, vertex_project, vertex_region,
                     trainer_machine_type):
    """Compile the pipeline into a KFP v2 pipeline spec for a cluster."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from inatvision.config import ConfigError

    try:
        kubeflow = runner.KubeflowConfig(
            data_cpu=data_cpu, data_memory_gb=data_memory_gb, trainer_cpu=trainer_cpu,
            trainer_memory_gb=trainer_memory_gb, gpus=gpus, accelerator=accelerator, step_cpu=step_cpu,
            step_memory_gb=step_memory_gb, gpu_node_selector=runner.parse_node_selector(gpu_node_selector),
            trainer_workers=trainer_workers, vertex_project=vertex_project, vertex_region=vertex_region,
            trainer_machine_type=trainer_machine_type)
        spec = runner.compile_pipeline(target, image, out, profile, overrides, kubeflow=kubeflow, root=root,
                                       pipeline_root=pipeline_root, destination=destination, export_dir=export_dir,
                                       photo_root=photo_root)
    except (ConfigError, runner.CompileError) as error:
        raise click.ClickException(str(error)) from None
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    click.echo(f"wrote {out}: {len(spec['root']['dag']['tasks'])} steps for {target}, image {image}")
    click.echo(f"pipeline root: {spec['defaultPipelineRoot']}")
    for name in sorted(parameters):
        click.echo(f"runtime parameter {name} = {parameters[name].get('defaultValue', '')!r}")
    if spec["defaultPipelineRoot"].startswith(runner.DEFAULT_ROOT + "/") or \
            parameters["push_destination"].get("defaultValue", "").startswith(runner.DEFAULT_ROOT + "/"):
        click.echo(f"note: {runner.DEFAULT_ROOT} is a placeholder; compile with --root gs://YOUR-BUCKET/inatvision "
                   f"or give --pipeline-root and --destination at submission", err=True)


@click.command("submit-kubeflow")
@click.option("--host", default=None, help="Kubeflow Pipelines API, e.g. http://localhost:8080 after a port-forward")
@click.option("--package", required=True, type=click.Path(exists=True, dir_okay=False),
              help="the .yaml from compile-kubeflow --target kfp")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="configuration override for this run, e.g. --set trainer.epochs=3 (repeatable)")
@click.option("--export", "export_dir", default=None, help="export folder for this run (gs://)")
@click.option("--pipeline-root", default=None, help="pipeline root for this run (gs://) [the compiled default]")
@click.option("--destination", default=None, help="push destination for this run (gs://) [the compiled default]")
@click.option("--photo-root", default=None, help="photos/ root if not inside the export (gs://)")
@click.option("--experiment", default="inatvision", show_default=True)
@click.option("--run-name", default=None)
@click.option("--namespace", default=None, help="Kubeflow profile namespace (multi-user clusters)")
@click.option("--service-account", default=None, help="Kubernetes service account the steps run as")
@click.option("--token", envvar="KFP_TOKEN", default=None, help="bearer token for the API [env KFP_TOKEN]")
@click.option("--no-cache", is_flag=True, help="run every step again (default: the compiled cache settings)")
@click.option("--wait", is_flag=True, help="wait for the run to end; exit 0 only if it succeeded")
@click.option("--timeout", type=int, default=7 * 24 * 3600, show_default=True, help="seconds --wait waits")
@click.option("--dry-run", is_flag=True,
              help="check and print the run's parameters as JSON without contacting anything (any package; the "
                   "JSON is Vertex's parameter_values)")
def submit_kubeflow(host, package, overrides, export_dir, pipeline_root, destination, photo_root, experiment,
                    run_name, namespace, service_account, token, no_cache, wait, timeout, dry_run):
    """Submit a compiled pipeline to a Kubeflow Pipelines cluster."""
    from inatvision.config import ConfigError

    if not dry_run and not package.endswith((".yaml", ".yml")):
        raise click.ClickException(f"{package}: submit the .yaml from compile-kubeflow --target kfp "
                                   f"(a Vertex PipelineJob .json goes to Vertex AI; see kubeflow/README.md)")
    if not dry_run and not host:
        raise click.ClickException("--host is required (or --dry-run)")
    if pipeline_root is not None and not pipeline_root.startswith("gs://"):
        raise click.ClickException(f"--pipeline-root {pipeline_root!r}: give a gs:// URI")
    spec, _ = runner.load_spec(package)
    try:
        if not dry_run:
            runner.check_kfp_package(spec)
        arguments, warnings = runner.submission_arguments(spec, overrides, export_dir, destination, photo_root)
    except (ConfigError, runner.CompileError) as error:
        raise click.ClickException(str(error)) from None
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if dry_run:
        click.echo(json.dumps(arguments, indent=2, sort_keys=True))
        return

    import kfp

    client_args = {"host": host}
    if namespace:
        client_args["namespace"] = namespace
    if token:
        client_args["existing_token"] = token
    client = kfp.Client(**client_args)
    result = client.create_run_from_pipeline_package(
        package, arguments=arguments, run_name=run_name, experiment_name=experiment, namespace=namespace,
        pipeline_root=pipeline_root, enable_caching=False if no_cache else None, service_account=service_account)
    click.echo(f"run {result.run_id}: {host.rstrip('/')}/#/runs/details/{result.run_id}")
    click.echo("arguments: " + ", ".join(f"{k}={v!r}" for k, v in sorted(arguments.items())))
    if wait:
        run = result.wait_for_run_completion(timeout)
        state = str(getattr(run, "state", "UNKNOWN"))
        click.echo(f"run {result.run_id} ended: {state}")
        sys.exit(0 if state == "SUCCEEDED" else 1)
