"""``python -m benchmark.bench``: how close the suite runs to the frozen encoder's own speed.

Every figure is measured in the same process, side by side, as the median of several repeats:

1. raw encoder forward throughput (seconds of audio per second) at the configured batch size;
1b. the same forward in fp32 and in bf16 (a second encoder from the same model config with ``dtype: bf16``, so
   the same weights), timed interleaved, their speed-up, and the relative difference of the hidden states
   (``bench.yaml``'s ``bf16: false`` turns it off; skipped where bf16 is not native or the encoder refuses it);
2. the full extraction pipeline (files on disk -> decode -> resample -> window -> encoder -> pooled cache) and its
   ratio to 1;
3. a "seed-style" loop (transformers feature extractor, one whole clip per forward, stacking hidden states) and
   the ratio of 2 to it;
4. one single-layer probe against the full sweep (all layers + weighted sum) on the same cached features, for 13
   and 25 hidden states;
5. peak resident memory of extraction at N and 4N clips (fresh processes);
6. feature-cache bytes per hour of audio per layer.

Every compute stage is also put against the machine's own limit (:mod:`benchmark.peak`): the dense-matmul peak
measured here in fp32 and bf16, the encoder's FLOPs per second of audio (counted by torch's FlopCounterMode),
and for stages 1, 2 and 4 the achieved GFLOP/s and its fraction of the measured peak of the dtype they run in.

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
from benchmark.encoders.registry import with_resolved_dtype
from benchmark.errors import ConfigError
from benchmark.evaluation import ClipEvaluator
from benchmark.extract import extract_split
from benchmark import peak as peaklib  # module reference: bf16_supported is looked up when called
from benchmark.peak import PEAK_DTYPES, count_flops, encoder_flops_per_audio_second, peak_gflops, size_sweep
from benchmark.probe import LayerSweepProbe, head_losses, make_heads
from benchmark.record import package_versions
from benchmark.run_checks import compute_device
from benchmark.sweep import train_sweep
from benchmark.tasks.base import Track

FILE_RATE = 44100  # synthetic files are written at a rate no encoder uses, so resampling is part of the cost
# the probe heads of stage 4 and their training batch (shared by the timing and the FLOP count)
PROBE = {"hidden": 512, "dropout": 0.2, "standardize": True}
PROBE_BATCH = 64
PROBE_CLASSES = 10
# model.dtype spellings -> the names of benchmark.peak.PEAK_DTYPES
DTYPE_NAMES = {"fp32": "fp32", "float32": "fp32", "bf16": "bf16", "bfloat16": "bf16", "fp16": "fp16",
               "float16": "fp16"}


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


def interleaved_median_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each of ``fns`` over ``repeats`` rounds that run every function once, after one
    untimed warm-up call of each.

    Why interleaved: timed one after the other, a change in the machine's load (another job, clock or thermal
    state) between the two blocks of repeats would read as a difference between the functions; alternating them
    exposes both to the same conditions. The order is reversed every other round (A B, B A, ...) so neither
    always runs right after the other.
    """
    for fn in fns.values():
        fn()
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(max(1, repeats)):
        for name in (names if round_ % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            fns[name]()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether ``b`` holds ``a``'s weights in its own dtype: every state-dict entry of ``a``, cast to the dtype of
    ``b``'s, equals ``b``'s exactly (same keys and shapes). True for two parameter-free encoders."""
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys():
        return False
    for key, ta in sa.items():
        tb = sb[key]
        if ta.shape != tb.shape or not torch.equal(ta.to(device=tb.device, dtype=tb.dtype), tb):
            return False
    return True


def hidden_state_rel_diff(reference: torch.Tensor, other: torch.Tensor) -> list[float]:
    """``||other - reference|| / ||reference||`` (Frobenius, in float64) of each hidden state ``[L+1, ...]``."""
    ref, oth = reference.detach().cpu().double(), other.detach().cpu().double()
    diffs = []
    for r, o in zip(ref, oth):
        norm = float(torch.linalg.vector_norm(r))
        diffs.append(float(torch.linalg.vector_norm(o - r)) / norm if norm > 0 else float("nan"))
    return diffs


def bf16_comparison(model_cfg: dict[str, Any], device: torch.device, spec: WindowSpec, batch_size: int,
                    audio_seconds: float, repeats: int, fp32_encoder: Encoder | None = None) -> dict[str, Any]:
    """Raw forward throughput of the encoder in fp32 and in bf16, timed interleaved, and how far apart their
    hidden states are on the same random input.

    Both encoders come from ``model_cfg`` (``dtype`` set to ``fp32`` and ``bf16``), so they hold the same weights:
    a random-init config rebuilds them from its seed, a checkpoint from the same files; ``same_weights`` records
    that the bf16 weights are exactly the fp32 ones cast. ``fp32_encoder``, when given, is used as the fp32 one
    (it must be that config's encoder in fp32). Returns ``{"ran": False, "reason": ...}`` where bf16 is not
    native on ``device`` (:func:`benchmark.peak.bf16_supported`; an emulated bf16 would time a slow fallback) or
    the encoder refuses bf16 (the baselines' ConfigError); else ``ran: True`` with both throughputs (seconds of
    audio per second, medians), ``speedup`` (bf16 / fp32) and ``hidden_rel_diff`` (per hidden state, its max and
    mean over them).
    """
    name = str(model_cfg.get("name") or model_cfg.get("kind"))
    if not peaklib.bf16_supported(device):
        return {"ran": False, "reason": f"bf16 is not native on {device} (benchmark.peak.bf16_supported)"}
    try:
        bf16_encoder = build_encoder({**model_cfg, "dtype": "bf16"}).to(device)
    except ConfigError as exc:
        return {"ran": False, "reason": f"{name} refuses dtype=bf16: {exc}"}
    if fp32_encoder is None:
        fp32_encoder = build_encoder({**model_cfg, "dtype": "fp32"}).to(device)
    encoders = {"fp32": fp32_encoder, "bf16": bf16_encoder}
    window = int(spec.window * fp32_encoder.sample_rate)
    batches = max(1, round(audio_seconds / spec.window / batch_size))
    generator = torch.Generator().manual_seed(0)
    x = (torch.randn(batch_size, window, generator=generator) * 0.1).to(device)

    def runner(encoder: Encoder) -> Callable[[], None]:
        forward = window_forward(encoder)

        def run() -> None:
            with torch.inference_mode():
                for _ in range(batches):
                    forward(x)

        return run

    seconds = interleaved_median_times({d: runner(e) for d, e in encoders.items()}, repeats)
    throughput = {d: batches * batch_size * spec.window / seconds[d] for d in encoders}
    with torch.inference_mode():
        states = {d: window_forward(e)(x)[0] for d, e in encoders.items()}
    diffs = hidden_state_rel_diff(states["fp32"], states["bf16"])
    return {"ran": True, "fp32_audio_s_per_s": throughput["fp32"], "bf16_audio_s_per_s": throughput["bf16"],
            "speedup": throughput["bf16"] / throughput["fp32"], "repeats": repeats, "batch_size": batch_size,
            "batches_per_repeat": batches, "window_seconds": spec.window,
            "timing": "interleaved fp32/bf16 rounds (order reversed every other round), medians, one warm-up each",
            "same_weights": same_weights(fp32_encoder, bf16_encoder),
            "hidden_rel_diff": {"per_state": diffs, "max": max(diffs), "mean": statistics.fmean(diffs),
                                "measure": "||h_bf16 - h_fp32|| / ||h_fp32|| per hidden state, one random batch"}}


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


def stage_flop_rate(flops: float, seconds: float, peak: float | None) -> dict[str, float | None]:
    """Achieved GFLOP/s of ``flops`` done in ``seconds``, and its fraction of the measured ``peak`` (GFLOP/s).

    Why a fraction of a measured peak: it says how much of what this machine can reach the stage uses (see
    :mod:`benchmark.peak`). None where it cannot be said: no FLOPs counted (work outside torch) or no peak for
    the dtype (not native here, or not measured, e.g. fp16).
    """
    gflops = flops / seconds / 1e9 if flops > 0 and seconds > 0 else None
    fraction = gflops / peak if gflops is not None and peak else None
    return {"gflops": gflops, "fraction_of_peak": fraction}


def describe_rate(rate: dict[str, float | None], dtype: str) -> str:
    """``52.1 GFLOP/s, 0.61 of the fp32 peak`` for the console, saying why a figure is missing."""
    if rate["gflops"] is None:
        return "FLOPs not counted (computed outside torch)"
    if rate["fraction_of_peak"] is None:
        return f"{rate['gflops']:.1f} GFLOP/s, no measured {dtype} peak"
    return f"{rate['gflops']:.1f} GFLOP/s, {rate['fraction_of_peak']:.2g} of the {dtype} peak"


def machine_peaks(device: torch.device, sizes: list[int], repeats: int) -> dict[str, Any]:
    """The measured dense-matmul peak of every dtype in :data:`~benchmark.peak.PEAK_DTYPES`, with the per-size
    figures and the settings they depend on (threads, fp32 matmul precision), as the JSON records them."""
    peaks: dict[str, Any] = {"device": str(device), "sizes": sizes, "repeats": repeats,
                             "torch_threads": torch.get_num_threads(),
                             "float32_matmul_precision": torch.get_float32_matmul_precision()}
    for dtype in PEAK_DTYPES:
        sweep = size_sweep(dtype, device, sizes, repeats)
        peaks[dtype] = {"supported": sweep is not None, "gflops": max(sweep.values()) if sweep else None,
                        "by_size": {str(n): g for n, g in sweep.items()} if sweep else None}
    return peaks


def describe_peaks(peaks: dict[str, Any]) -> str:
    """``fp32 85.7 GFLOP/s, bf16 not native here`` for the console."""
    return ", ".join(f"{d} {peaks[d]['gflops']:.1f} GFLOP/s" if peaks[d]["supported"] else f"{d} not native here"
                     for d in PEAK_DTYPES)


def probe_flops_per_row(num_states: int, dim: int, layers: list[int], with_sum: bool) -> tuple[float, float]:
    """``(train, eval)`` FLOPs per feature row of the sweep's heads, counted with FlopCounterMode.

    Counted, not computed from ``probe.hidden``: one training step (forward, loss, backward) and one eval-mode
    forward of the very module :func:`~benchmark.sweep.train_sweep` trains, on one batch of :data:`PROBE_BATCH`
    rows, divided by the rows (every product is linear in them). The count includes what a formula would likely
    miss, such as the input gradient the backward computes whenever weighted-sum heads are present.
    """
    heads = make_heads(layers, with_sum, [1e-3])
    evaluator = ClipEvaluator("multiclass", [str(c) for c in range(PROBE_CLASSES)], np.arange(1), np.zeros(1))
    model = LayerSweepProbe(heads, num_states, dim, PROBE_CLASSES, "cross_entropy", evaluator,
                            np.zeros((num_states, dim), np.float32), np.ones((num_states, dim), np.float32),
                            hidden=int(PROBE["hidden"]), dropout=float(PROBE["dropout"]))
    x = torch.randn(PROBE_BATCH, num_states, dim)
    y = torch.randint(0, PROBE_CLASSES, (PROBE_BATCH,))

    def train_step() -> None:
        model.train()
        head_losses(model.loss, model(x), y).sum().backward()

    def eval_step() -> None:
        model.eval()
        with torch.no_grad():
            model(x)

    return count_flops(train_step) / PROBE_BATCH, count_flops(eval_step) / PROBE_BATCH


def probe_timing(num_states: int, dim: int, windows: int, epochs: int, repeats: int) -> dict[str, Any]:
    """Wall time of one single-layer probe and of the full sweep on the same synthetic cached features, and the
    FLOPs of one epoch of each (training rows forward + backward, validation rows forward; see
    :func:`probe_flops_per_row`) with the GFLOP/s achieved over the ``epochs`` trained (the wall time also holds
    the final valid/test predictions and Lightning's setup, so the rate is a slight underestimate)."""
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
    probe = dict(PROBE)
    trainer = {"max_epochs": epochs, "patience": epochs + 1, "batch_size": PROBE_BATCH, "progress_bar": False}

    def sweep(layers: list[int], with_sum: bool) -> Callable[[], object]:
        heads = make_heads(layers, with_sum, [1e-3])
        return lambda: train_sweep(splits, labels["train"], evaluators, "cross_entropy", 10, heads, probe,
                                   trainer, seed=0)

    single = median_time(sweep([num_states // 2], False), repeats)
    full = median_time(sweep(list(range(num_states)), True), repeats)
    timing: dict[str, Any] = {"states": num_states, "dim": dim, "single_layer_seconds": single,
                              "full_sweep_seconds": full, "heads": num_states + 1, "ratio": full / single,
                              "flops_counted": "FlopCounterMode: one training step and one eval forward, per row"}
    for name, layers, with_sum, seconds in (("single_layer", [num_states // 2], False, single),
                                            ("full_sweep", list(range(num_states)), True, full)):
        train_row, eval_row = probe_flops_per_row(num_states, dim, layers, with_sum)
        epoch_flops = train_row * windows + eval_row * len(labels["valid"])
        timing[f"{name}_epoch_flops"] = epoch_flops
        timing[f"{name}_gflops"] = epochs * epoch_flops / seconds / 1e9
    return timing


def peak_memory(model_overrides: list[str], clips: int, clip_seconds: float, device: str) -> float:
    """Peak RSS (MiB) of a fresh process extracting ``clips`` clips (measured by the child itself)."""
    cmd = [sys.executable, "-m", "benchmark.bench", "--memory-child", str(clips), str(clip_seconds), device,
           *model_overrides]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mib"])


def _memory_child(clips: int, clip_seconds: float, device: str, overrides: list[str]) -> None:
    config = _resolved(_compose("bench", overrides))
    where = compute_device(device)
    encoder = build_encoder(config["model"], where).to(where)
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
    config["model"] = with_resolved_dtype(config["model"], device)  # model.dtype=auto: what runs on this device
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
    peak_cfg = config.get("peak") or {}
    sizes = [int(n) for n in peak_cfg.get("sizes", [1024, 2048, 4096])]
    peak_repeats = int(peak_cfg.get("repeats", repeats))
    peaks = machine_peaks(device, sizes, peak_repeats)
    console.print(f"peak dense matmul on {device} ({peaks['torch_threads']} threads, measured, best of sizes "
                  f"{sizes}): {describe_peaks(peaks)}")
    dtype = DTYPE_NAMES.get(str(config["model"].get("dtype", "fp32")), str(config["model"].get("dtype")))
    peak = peaks[dtype]["gflops"] if dtype in PEAK_DTYPES else None
    flops_per_audio_s = encoder_flops_per_audio_second(encoder, window)
    console.print(f"encoder: {flops_per_audio_s / 1e9:.2f} GFLOP per second of audio (FlopCounterMode, one "
                  f"{window:g} s window), runs in {dtype}")
    results.update(peak=peaks, encoder_dtype=dtype, encoder_gflop_per_audio_second=flops_per_audio_s / 1e9)
    with tempfile.TemporaryDirectory() as tmp:
        tracks = write_clips(Path(tmp) / "audio", int(config["clips"]), float(config["clip_seconds"]),
                             file_format=str(config.get("file_format", "wav")))
        audio_seconds = len(tracks) * float(config["clip_seconds"])
        decode = decode_throughput(tracks, encoder.sample_rate, repeats)
        console.print(f"0. decode + resample ({config.get('file_format', 'wav')}, one process): {decode:.1f} s of "
                      f"audio / s")
        results["decode_audio_s_per_s"] = decode
        raw = forward_throughput(encoder, spec, batch, audio_seconds, repeats)
        raw_rate = stage_flop_rate(flops_per_audio_s * raw, 1.0, peak)
        console.print(f"1. encoder forward: {raw:.1f} s of audio / s; {describe_rate(raw_rate, dtype)}")
        if config.get("bf16", True):
            comparison = bf16_comparison(config["model"], device, spec, batch, audio_seconds, repeats,
                                         fp32_encoder=encoder if dtype == "fp32" else None)
        else:
            comparison = {"ran": False, "reason": "bf16: false in the bench config"}
        if comparison["ran"]:
            for d in ("fp32", "bf16"):
                comparison[f"{d}_flop_rate"] = stage_flop_rate(flops_per_audio_s * comparison[f"{d}_audio_s_per_s"],
                                                               1.0, peaks[d]["gflops"])
            diff = comparison["hidden_rel_diff"]
            console.print(f"1b. fp32 vs bf16 forward, interleaved: fp32 {comparison['fp32_audio_s_per_s']:.1f} s/s, "
                          f"bf16 {comparison['bf16_audio_s_per_s']:.1f} s/s; speed-up {comparison['speedup']:.2f}x")
            console.print(f"   hidden states, ||h_bf16 - h_fp32|| / ||h_fp32|| over {len(diff['per_state'])} layers: "
                          f"max {diff['max']:.2e}, mean {diff['mean']:.2e}"
                          + ("" if comparison["same_weights"] else "; WARNING: the bf16 weights differ from fp32's"))
            console.print(f"   fp32 {describe_rate(comparison['fp32_flop_rate'], 'fp32')}; "
                          f"bf16 {describe_rate(comparison['bf16_flop_rate'], 'bf16')}")
        else:
            console.print(f"1b. fp32 vs bf16 forward: skipped ({comparison['reason']})")
        results["bf16_comparison"] = comparison
        pipe, cache = pipeline_throughput(encoder, tracks, spec, batch, int(config["num_workers"]), repeats,
                                          Path(tmp) / "cache")
        pipe_rate = stage_flop_rate(flops_per_audio_s * pipe, 1.0, peak)
        console.print(f"2. extraction pipeline: {pipe:.1f} s/s; ratio 2/1 = {pipe / raw:.3f} (target >= 0.9); "
                      f"{describe_rate(pipe_rate, dtype)}")
        seed = seed_style_throughput(encoder, tracks, repeats)
        if seed is not None:
            console.print(f"3. seed-style loop: {seed:.1f} s/s; pipeline is {pipe / seed:.2f}x faster")
        cache_bytes = cache.disk_bytes()
    results.update(encoder_forward_audio_s_per_s=raw, pipeline_audio_s_per_s=pipe, pipeline_over_forward=pipe / raw,
                   seed_style_audio_s_per_s=seed, pipeline_over_seed_style=(pipe / seed) if seed else None,
                   encoder_forward_flop_rate=raw_rate, pipeline_flop_rate=pipe_rate)

    # the probes train where Lightning's accelerator=auto puts them: against that device's fp32 peak
    probe_device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    probe_peak = (peaks["fp32"]["gflops"] if probe_device.type == device.type
                  else peak_gflops("fp32", probe_device, sizes, peak_repeats))
    results["probe_fp32_peak_gflops"] = probe_peak
    probes = []
    for states, dim in zip(config["probe"]["layer_counts"], config["probe"]["dims"]):
        timing = probe_timing(int(states), int(dim), int(config["probe"]["windows"]), int(config["probe"]["epochs"]),
                              repeats)
        for name in ("single_layer", "full_sweep"):
            timing[f"{name}_fraction_of_fp32_peak"] = stage_flop_rate(timing[f"{name}_gflops"] * 1e9, 1.0,
                                                                      probe_peak)["fraction_of_peak"]
        probes.append(timing)
        console.print(f"4. probes, {states} states x {dim}: one layer {timing['single_layer_seconds']:.2f} s, "
                      f"full sweep ({timing['heads']} heads) {timing['full_sweep_seconds']:.2f} s; "
                      f"ratio {timing['ratio']:.2f} (target <= 1.5)")
        for name, label in (("single_layer", "one layer"), ("full_sweep", "full sweep")):
            rate = {"gflops": timing[f"{name}_gflops"], "fraction_of_peak": timing[f"{name}_fraction_of_fp32_peak"]}
            console.print(f"   {label}: {timing[f'{name}_epoch_flops'] / 1e9:.2f} GFLOP per epoch (heads' "
                          f"matmuls, counted), {describe_rate(rate, 'fp32')} on {probe_device.type}")
    results["probes"] = probes

    n = int(config["memory_clips"])
    overrides = [a for a in argv if a.startswith("model")]
    small = peak_memory(overrides, n, float(config["clip_seconds"]), config["device"])
    large = peak_memory(overrides, 4 * n, float(config["clip_seconds"]), config["device"])
    console.print(f"5. peak RSS of extraction: {n} clips {small:.0f} MiB, {4 * n} clips {large:.0f} MiB; "
                  f"ratio {large / small:.3f} (target <= 1.1)")
    results["peak_rss_mib"] = {str(n): small, str(4 * n): large, "ratio": large / small}

    if config.get("beat_validation", True):  # frame-level validation's share of an epoch at GTZAN scale
        from benchmark.bench_validation import beat_validation_share, describe_beat_validation

        share = beat_validation_share()
        for k, line in enumerate(describe_beat_validation(share)):
            console.print(("7. " if k == 0 else "   ") + line, highlight=False)
        results["beat_validation"] = share

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
