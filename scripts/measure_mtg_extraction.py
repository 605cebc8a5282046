"""Extraction throughput on full-length MTG-Jamendo-like MP3s, and what it means for the real 3,764 hours.

Why a script and not a test: it measures, it asserts nothing. It writes eight tracks of the split-0 union at
their real paths and their published full lengths (MP3, 44.1 kHz, as audio-low is; the content is the test
fixture's tones, which costs the decoder and the encoder what music does), runs the suite's own extraction
(``python -m benchmark extract task=mtg_top50``, the cache every MTG subset shares) and times it, times decoding
alone, and projects both onto the whole collection. With ``--bench-json`` (a ``python -m benchmark.bench`` result
from the machine that will do the real run, e.g. a GPU) it also projects the time there: the encoder's measured
forward throughput, capped by the decoding throughput of ``--gpu-workers`` DataLoader workers.

    python scripts/measure_mtg_extraction.py --model mert-v1-95m-random
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.fixtures.mtg_jamendo.make writes the audio


def pick_tracks() -> list[str]:
    """The test fixture's eight real tracks (4 / 2 / 2 over the splits, in all four subsets, chosen so that every
    subset's protocol checks pass), here at their published full lengths: 87 s to 551 s, 33 min in all."""
    from tests.fixtures.mtg_jamendo.make import FIXTURE_TRACKS

    return [tid for split in ("train", "valid", "test") for tid in FIXTURE_TRACKS[split]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mert-v1-95m-random")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers of the measured extraction")
    parser.add_argument("--bench-json", type=Path, help="a benchmark.bench result to project a GPU run from")
    parser.add_argument("--gpu-workers", type=int, default=8, help="decoding workers assumed for that run")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    from rich.console import Console

    from benchmark.audio import load_audio
    from benchmark.cli import _compose, _resolved
    from benchmark.encoders import build_encoder
    from benchmark.runner import extract_features
    from benchmark.tasks import mtg_jamendo as mtg
    from tests.fixtures.mtg_jamendo.make import write_tracks

    total_seconds = sum(row.duration for row, _ in mtg.union_rows())
    ids = pick_tracks()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        written = write_tracks(root / "data", ids)
        audio_seconds = sum(row.duration for row, _ in mtg.union_rows() if row.track_id in written)
        config = _resolved(_compose("config", [
            "task=mtg_top50", f"model={args.model}", f"data_root={root / 'data'}", f"cache_dir={root / 'cache'}",
            f"results_dir={root / 'results'}", f"num_workers={args.workers}", "max_missing_fraction=1.0"]))
        encoder = build_encoder(config["model"])
        started = time.perf_counter()
        summary = extract_features(config, console=Console(quiet=True), encoder=encoder)
        wall = time.perf_counter() - started
        rate = encoder.sample_rate
        decode_times = []
        for path in written.values():
            t0 = time.perf_counter()
            load_audio(path, rate)
            decode_times.append(time.perf_counter() - t0)
    pipeline = audio_seconds / summary["extraction_seconds"]
    decode = audio_seconds / sum(decode_times)
    out = {
        "model": args.model, "tracks": ids, "audio_seconds": audio_seconds, "workers": args.workers,
        "extraction_seconds": summary["extraction_seconds"], "wall_seconds_with_checks": wall,
        "pipeline_audio_s_per_s": pipeline, "decode_audio_s_per_s_one_process": decode,
        "median_decode_seconds_per_track": statistics.median(decode_times),
        "collection_hours": total_seconds / 3600, "projected_hours_here": total_seconds / pipeline / 3600,
    }
    print(f"{len(ids)} full-length MP3 tracks, {audio_seconds / 60:.1f} min of audio, model {args.model}: "
          f"extraction {pipeline:.2f} s of audio / s ({summary['extraction_seconds']:.0f} s); decoding alone "
          f"{decode:.0f} s/s in one process")
    print(f"MTG-Jamendo split-0 union: {total_seconds / 3600:,.0f} h of audio -> {out['projected_hours_here']:,.0f} h "
          f"({out['projected_hours_here'] / 24:.1f} days) of extraction on this machine")
    if args.bench_json:
        bench = json.loads(args.bench_json.read_text())
        forward = float(bench["encoder_forward_audio_s_per_s"]) * float(bench.get("pipeline_over_forward") or 1.0)
        bound = min(forward, decode * args.gpu_workers)
        out.update(bench=str(args.bench_json), bench_device=bench.get("device"), bench_pipeline_audio_s_per_s=forward,
                   projected_hours_bench=total_seconds / bound / 3600, gpu_workers=args.gpu_workers)
        print(f"on {bench.get('device')} ({args.bench_json.name}): pipeline {forward:.0f} s/s, decoding bound "
              f"{decode * args.gpu_workers:.0f} s/s with {args.gpu_workers} workers -> "
              f"{out['projected_hours_bench']:.1f} h")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
