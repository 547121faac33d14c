"""``streamtrt doctor`` and ``streamtrt bench``."""

from __future__ import annotations

import json
from typing import Optional

import click

from .app import _guard, _verbose_option, main


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_verbose_option
@_guard
def doctor(as_json: bool) -> None:
    """Report GPU, driver, DALI, TensorRT, ONNX Runtime, NVDEC and DLA, and what streamtrt will pick."""
    from ..doctor import collect, format_report

    report = collect()
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--source", "source", metavar="URI", help="Override the config's source.")
@click.option("--set", "overrides", metavar="KEY=VALUE", multiple=True, help="Override a config value (repeatable).")
@click.option("--frames", type=click.IntRange(min=8), default=300, show_default=True,
              help="Frames per measurement (taken from the start of the source).")
@click.option("--naive-decoder", type=click.Choice(["same", "opencv"]), default="same", show_default=True,
              help="Decoder of the naive loop: the pipeline's own, or OpenCV on the CPU.")
@click.option("--repeat", type=click.IntRange(min=1), default=2, show_default=True,
              help="Alternating runs of the naive loop and the pipeline; the best of each is reported.")
@click.option("--streams", metavar="N,M,...",
              help="Multi-stream mode: for each count, decode alone, the pipeline unpaced, and real-time "
                   "replay of the source (--source or the config's first) as N camera streams.")
@click.option("--duration", type=click.FloatRange(min=2), default=12.0, show_default=True,
              help="Multi-stream mode: seconds measured per real-time run.")
@click.option("--latency-ms", type=click.FloatRange(min=1), default=250.0, show_default=True,
              help="Multi-stream mode: p99 latency limit of a real-time stream.")
@click.option("--soak", "soak_min", type=click.FloatRange(min=1), metavar="MINUTES",
              help="Soak mode: run live for MINUTES (the config's video looped at its frame rate, or --source) "
                   "and report memory, fd and thread growth after warm-up, projected to 24 h.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the results as JSON.")
@_verbose_option
@_guard
def bench(config: str, source: Optional[str], overrides: tuple[str, ...], frames: int, naive_decoder: str,
          repeat: int, streams: Optional[str], duration: float, latency_ms: float, soak_min: Optional[float],
          json_path: Optional[str]) -> None:
    """Measure each stage alone, a naive sequential loop and the pipeline, side by side
    (or, with --streams, how many real-time streams one process holds; with --soak, resource growth)."""
    log = lambda m: click.echo(m, err=True)  # noqa: E731
    if soak_min:
        from ..soak import format_soak, run_soak

        report = run_soak(config, list(overrides), soak_min, source, log=log)
        click.echo(format_soak(report))
    elif streams:
        from ..bench_streams import format_stream_table, run_stream_bench
        from ..config import load_config
        from ..errors import ConfigError

        try:
            counts = sorted({int(x) for x in streams.split(",") if x.strip()})
        except ValueError:
            raise ConfigError(f"--streams {streams!r}: expected stream counts like 8,16,32") from None
        if not counts or min(counts) < 1:
            raise ConfigError(f"--streams {streams!r}: expected stream counts like 8,16,32")
        clip = source or load_config(config, list(overrides)).streams()[0].uri
        report = run_stream_bench(config, list(overrides), clip, counts, duration, latency_ms, log=log)
        click.echo(format_stream_table(report))
    else:
        from ..bench import format_table, run_bench

        extra = list(overrides) + ([f"source={json.dumps(source)}", "sources=[]"] if source else [])
        report = run_bench(config, extra, frames, naive_decoder, log=log, repeat=repeat)
        click.echo(format_table(report))
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
