"""``python -m benchmark.bench``: how close the suite runs to the frozen encoder's own speed.

Every figure is measured in the same process, side by side, as the median of several repeats:

1. raw encoder forward throughput (seconds of audio per second) at the configured batch size;
2. the full extraction pipeline (files on disk -> decode -> resample -> window -> encoder -> pooled cache) and its
   ratio to 1;
3. a "seed-style" loop (transformers feature extractor, one whole clip per forward, stacking hidden states) and
   the ratio of 2 to it;
4. one single-layer probe against the full sweep (all layers + weighted sum) on the same cached features, for 13
   and 25 hidden states;
5. peak resident memory of extraction at N and 4N clips (fresh processes);
6. feature-cache bytes per hour of audio per layer.

The figures are printed and written as JSON under ``results/bench/`` with the machine description.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import soundfile as sf
import torch

from benchmark.audio import WindowSpec, load_audio
from benchmark.cache import FeatureCache, SplitFeatures
from benchmark.cli import _compose, _resolved
from benchmark.console import make_console
from benchmark.encoders import build_encoder
from benchmark.encoders.base import Encoder, window_forward
from benchmark.errors import ConfigError
from benchmark.evaluation import ClipEvaluator
from benchmark.extract import extract_split
from benchmark.probe import make_heads
from benchmark.record import package_versions
from benchmark.run_checks import compute_device
from benchmark.sweep import train_sweep
from benchmark.tasks.base import Track

FILE_RATE = 44100  # synthetic files are written at a rate no encoder uses, so resampling is part of the cost


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# file_format= of the bench: how the synthetic files are stored (MP3 as MTG-Jamendo's and MTT's audio is)
FILE_FORMATS: dict[str, dict[str, str]] = {"wav": {"format": "WAV", "subtype": "PCM_16"},
                                           "mp3": {"format": "MP3", "subtype": "MPEG_LAYER_III"}}


def write_clips(folder: Path, count: int, seconds: float, seed: int = 0, file_format: str = "wav") -> list[Track]:
    """Stereo 44.1 kHz files of harmonic tones and noise (content does not matter for speed), WAV or MP3."""
    if file_format not in FILE_FORMATS:
        raise ConfigError(f"file_format={file_format!r}: one of {', '.join(FILE_FORMATS)}")
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * FILE_RATE)) / FILE_RATE
    tracks = []
    for i in range(count):
        f0 = rng.uniform(80, 800)
        x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * 0.2 + 0.01 * rng.standard_normal(len(t))
        path = folder / f"clip{i:04d}.{file_format}"
        sf.write(path, np.stack([x, x * 0.9], axis=1).astype(np.float32), FILE_RATE, **FILE_FORMATS[file_format])
        tracks.append(Track(track_id=f"clip{i:04d}", path=path, split="train", target=0))
    return tracks


def decode_throughput(tracks: list[Track], sample_rate: int, repeats: int) -> float:
    """Seconds of audio per second that one process decodes and resamples to the encoder's rate.

    Why: with compressed audio (MTG-Jamendo's MP3s) decoding, not the encoder, can bound extraction; a GPU run
    needs about (encoder throughput / this) DataLoader workers to keep the encoder busy.
    """
    audio_seconds = sum(sf.info(t.path).duration for t in tracks)
    return audio_seconds / median_time(lambda: [load_audio(t.path, sample_rate) for t in tracks], repeats)


def forward_throughput(encoder: Encoder, spec: WindowSpec, batch_size: int, audio_seconds: float,
                       repeats: int) -> float:
    """Seconds of audio per second through ``encoder.hidden_states`` alone (inputs already in memory).

    With ``model.normalize_scope=file`` the random windows stand for windows of normalised files (the file step
    runs in the extractor's workers, timed in the pipeline figure), so they are passed as such.
    """
    window = int(spec.window * encoder.sample_rate)
    batches = max(1, round(audio_seconds / spec.window / batch_size))
    x = torch.randn(batch_size, window).to(encoder.device) * 0.1
    forward = window_forward(encoder)

    def run() -> None:
        with torch.inference_mode():
            for _ in range(batches):
                forward(x)

    return batches * batch_size * spec.window / median_time(run, repeats)


def pipeline_throughput(encoder: Encoder, tracks: list[Track], spec: WindowSpec, batch_size: int,
                        num_workers: int, repeats: int, cache_root: Path) -> tuple[float, FeatureCache]:
    """Seconds of audio per second from files on disk to a complete cache split."""
    audio_seconds = sum(sf.info(t.path).duration for t in tracks)
    counter = iter(range(10 ** 6))
    cache = FeatureCache(cache_root, {"bench": "pipeline"})

    def run() -> None:
        cache_run = FeatureCache(cache_root, {"bench": next(counter)})
        extract_split(encoder, tracks, cache_run, "train", spec, batch_size, num_workers)

    seconds = median_time(run, repeats)
    extract_split(encoder, tracks, cache, "train", spec, batch_size, num_workers)
    return audio_seconds / seconds, cache


def seed_style_throughput(encoder: Encoder, tracks: list[Track], repeats: int) -> float | None:
    """The loop of a typical research script: processor + one whole clip per forward + stacked hidden states."""
    model = getattr(encoder, "model", None)
    if model is None:
        return None
    from transformers import Wav2Vec2FeatureExtractor

    processor = Wav2Vec2FeatureExtractor(sampling_rate=encoder.sample_rate,
                                         do_normalize=bool(getattr(encoder, "do_normalize", False)))
    audio_seconds = sum(sf.info(t.path).duration for t in tracks)

    def run() -> None:
        for t in tracks:
            audio = load_audio(t.path, encoder.sample_rate)
            inputs = processor(audio, sampling_rate=encoder.sample_rate, return_tensors="pt")
            with torch.no_grad():
                out = model(inputs["input_values"].to(encoder.device, next(model.parameters()).dtype),
                            output_hidden_states=True)
            torch.stack(out.hidden_states).squeeze(1).float().mean(dim=1).cpu()

    return audio_seconds / median_time(run, repeats)


def probe_timing(num_states: int, dim: int, windows: int, epochs: int, repeats: int) -> dict[str, float]:
    """Wall time of one single-layer probe and of the full sweep on the same synthetic cached features."""
    rng = np.random.default_rng(0)
    labels = {s: rng.integers(0, 10, n) for s, n in (("train", windows), ("valid", windows // 4),
                                                    ("test", windows // 4))}
    splits = {}
    for split, y in labels.items():
        x = rng.standard_normal((len(y), num_states, dim)).astype(np.float16)
        x[np.arange(len(y)), num_states // 2, y] += 2.0
        splits[split] = SplitFeatures(x, np.arange(len(y)), [str(i) for i in range(len(y))])
    evaluators = {s: ClipEvaluator("multiclass", [str(c) for c in range(10)], splits[s].window_track, labels[s])
                  for s in ("valid", "test")}
    probe = {"hidden": 512, "dropout": 0.2, "standardize": True}
    trainer = {"max_epochs": epochs, "patience": epochs + 1, "batch_size": 64, "progress_bar": False}

    def sweep(layers: list[int], with_sum: bool) -> Callable[[], object]:
        heads = make_heads(layers, with_sum, [1e-3])
        return lambda: train_sweep(splits, labels["train"], evaluators, "cross_entropy", 10, heads, probe,
                                   trainer, seed=0)

    single = median_time(sweep([num_states // 2], False), repeats)
    full = median_time(sweep(list(range(num_states)), True), repeats)
    return {"states": num_states, "dim": dim, "single_layer_seconds": single, "full_sweep_seconds": full,
            "heads": num_states + 1, "ratio": full / single}


def peak_memory(model_overrides: list[str], clips: int, clip_seconds: float, device: str) -> float:
    """Peak RSS (MiB) of a fresh process extracting ``clips`` clips (measured by the child itself)."""
    cmd = [sys.executable, "-m", "benchmark.bench", "--memory-child", str(clips), str(clip_seconds), device,
           *model_overrides]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mib"])


def _memory_child(clips: int, clip_seconds: float, device: str, overrides: list[str]) -> None:
    config = _resolved(_compose("bench", overrides))
    encoder = build_encoder(config["model"]).to(compute_device(device))
    spec = WindowSpec(config.get("window_seconds") or encoder.context_seconds,
                      config.get("window_seconds") or encoder.context_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        tracks = write_clips(Path(tmp) / "audio", clips, clip_seconds)
        extract_split(encoder, tracks, FeatureCache(Path(tmp), {"bench": "memory"}), "train", spec,
                      int(config.get("batch_size") or config["model"].get("batch_size", 4)), 0)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_mib": peak_kib / 1024}))


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "processor": platform.processor(),
                            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main(argv: list[str]) -> int:
    if argv[:1] == ["--memory-child"]:
        _memory_child(int(argv[1]), float(argv[2]), argv[3], argv[4:])
        return 0
    config = _resolved(_compose("bench", argv))
    console = make_console()
    device = compute_device(config["device"])
    encoder = build_encoder(config["model"]).to(device)
    window = config.get("window_seconds") or encoder.context_seconds
    spec = WindowSpec(window, window)
    batch = int(config.get("batch_size") or config["model"].get("batch_size", 4))
    repeats = int(config["repeats"])
    results: dict[str, Any] = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "produced_by": "python -m benchmark.bench " + " ".join(argv),
                               "model": encoder.name, "device": str(device), "batch_size": batch,
                               "window_seconds": window, "file_format": config.get("file_format", "wav"),
                               "machine": machine(), "versions": package_versions()}
    console.print(f"bench: {encoder.name} on {device}, batch {batch}, window {window:g} s, "
                  f"{config['clips']} clips x {config['clip_seconds']:g} s, median of {repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        tracks = write_clips(Path(tmp) / "audio", int(config["clips"]), float(config["clip_seconds"]),
                             file_format=str(config.get("file_format", "wav")))
        audio_seconds = len(tracks) * float(config["clip_seconds"])
        decode = decode_throughput(tracks, encoder.sample_rate, repeats)
        console.print(f"0. decode + resample ({config.get('file_format', 'wav')}, one process): {decode:.1f} s of "
                      f"audio / s")
        results["decode_audio_s_per_s"] = decode
        raw = forward_throughput(encoder, spec, batch, audio_seconds, repeats)
        console.print(f"1. encoder forward: {raw:.1f} s of audio / s")
        pipe, cache = pipeline_throughput(encoder, tracks, spec, batch, int(config["num_workers"]), repeats,
                                          Path(tmp) / "cache")
        console.print(f"2. extraction pipeline: {pipe:.1f} s/s; ratio 2/1 = {pipe / raw:.3f} (target >= 0.9)")
        seed = seed_style_throughput(encoder, tracks, repeats)
        if seed is not None:
            console.print(f"3. seed-style loop: {seed:.1f} s/s; pipeline is {pipe / seed:.2f}x faster")
        cache_bytes = cache.disk_bytes()
    results.update(encoder_forward_audio_s_per_s=raw, pipeline_audio_s_per_s=pipe, pipeline_over_forward=pipe / raw,
                   seed_style_audio_s_per_s=seed, pipeline_over_seed_style=(pipe / seed) if seed else None)

    probes = []
    for states, dim in zip(config["probe"]["layer_counts"], config["probe"]["dims"]):
        timing = probe_timing(int(states), int(dim), int(config["probe"]["windows"]), int(config["probe"]["epochs"]),
                              repeats)
        probes.append(timing)
        console.print(f"4. probes, {states} states x {dim}: one layer {timing['single_layer_seconds']:.2f} s, "
                      f"full sweep ({timing['heads']} heads) {timing['full_sweep_seconds']:.2f} s; "
                      f"ratio {timing['ratio']:.2f} (target <= 1.5)")
    results["probes"] = probes

    n = int(config["memory_clips"])
    overrides = [a for a in argv if a.startswith("model")]
    small = peak_memory(overrides, n, float(config["clip_seconds"]), config["device"])
    large = peak_memory(overrides, 4 * n, float(config["clip_seconds"]), config["device"])
    console.print(f"5. peak RSS of extraction: {n} clips {small:.0f} MiB, {4 * n} clips {large:.0f} MiB; "
                  f"ratio {large / small:.3f} (target <= 1.1)")
    results["peak_rss_mib"] = {str(n): small, str(4 * n): large, "ratio": large / small}

    per_hour_layer = cache_bytes / (audio_seconds / 3600) / encoder.num_hidden_states
    console.print(f"6. cache: {per_hour_layer / 1024:.1f} KiB per hour of audio per layer "
                  f"(pooled per {window:g} s window, float16)")
    results["cache_bytes_per_hour_per_layer"] = per_hour_layer

    out_dir = Path(config["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{encoder.name}-{device.type}-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(results, indent=2))
    console.print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
