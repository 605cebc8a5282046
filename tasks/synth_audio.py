"""Numpy-only music rendering shared by the synthetic tasks (:mod:`benchmark.tasks.synth_base`).

Why this exists: the synthetic tasks are the suite's offline default and the fixtures of every task type, so
they must need no download and no system package, yet they must sound enough like music that a probe cannot
solve them from a single FFT bin. Every note therefore has several partials with an instrument-specific
spectrum (roll-off, odd/even balance, stiff-string or bell inharmonicity, pluck-position combing), its own
envelope (ADSR or plucked decay where high partials die first), velocity-dependent brightness, small random
detune, optional vibrato/tremolo/unison chorus and an attack transient; the mix gets a little room reverb, a
random tilt EQ and a background noise floor before it is normalised with headroom.

Everything random takes an explicit ``numpy.random.Generator`` so a clip is a pure function of its seed.
Sine evaluation runs in float32 (numpy's SIMD path is ~20x faster than float64 there) while phases are
accumulated in float64 and wrapped before the cast, so long notes keep exact pitch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

DEFAULT_SAMPLE_RATE = 22050
_TWO_PI = np.float32(2.0 * math.pi)
# Partials above this fraction of the sample rate are dropped so nothing aliases.
_NYQUIST_MARGIN = 0.45
# Partials quieter than this (relative to the loudest) are skipped: inaudible in a mix, and they cost time.
_MIN_PARTIAL_AMP = 2e-3
# A decaying partial is rendered only until it has fallen by this factor (-60 dB).
_DECAY_CUTOFF = math.log(1000.0)


def midi_to_hz(midi: float) -> float:
    """Equal-tempered frequency of a (possibly fractional) MIDI pitch; A4 = 69 = 440 Hz."""
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def cents_to_ratio(cents: float) -> float:
    """Frequency ratio of an interval given in cents."""
    return 2.0 ** (cents / 1200.0)


@dataclass(frozen=True)
class Instrument:
    """A pitched timbre: partial layout, envelope and modulation.

    Attributes:
        name: identifier used by :class:`NoteEvent`.
        partial_ratios: explicit partial frequency ratios (bells, tuned bars, drawbars); ``None`` = the
            harmonic series ``1..n_partials`` (stretched by ``inharmonicity``).
        partial_amps: explicit partial amplitudes matching ``partial_ratios``; ``None`` = ``k ** -rolloff``.
        n_partials: number of harmonics when ``partial_ratios`` is ``None``.
        rolloff: spectral slope exponent (larger = darker).
        even_gain: multiplier on even harmonics (small = hollow, clarinet-like).
        inharmonicity: stiff-string coefficient ``B`` in ``f_k = k f0 sqrt(1 + B k^2)``.
        pluck_position: range of relative pluck points; harmonics with a node there are attenuated.
        envelope: ``adsr`` (sustained) or ``decay`` (struck/plucked: exponential decay per partial).
        attack, decay, sustain, release: ADSR times (s) and sustain level; ``release`` also applies to
            ``decay`` envelopes as the damping time after note-off.
        decay_time: time constant (s) of the fundamental for ``decay`` envelopes, at middle C.
        decay_pitch_exponent: higher notes decay faster: ``tau *= (261.6 / f0) ** exponent``.
        partial_damping: higher partials decay faster: ``tau_k = tau / (1 + damping * (k - 1))``.
        voices: unison voices (chorus); ``voice_detune_cents`` is the spread between outer voices.
        vibrato_rate, vibrato_cents, vibrato_delay: pitch modulation (Hz, depth, onset delay in s).
        tremolo_rate, tremolo_depth: amplitude modulation.
        attack_noise: level of a band-passed noise burst at onset (hammer, pick, breath, key click).
        attack_noise_band: its pass band in Hz; ``attack_noise_time`` its decay time constant (s).
        velocity_brightness: how much a soft velocity steepens the roll-off (soft notes are darker).
        gain: level trim so instruments sit at comparable loudness.
    """

    name: str
    partial_ratios: tuple[float, ...] | None = None
    partial_amps: tuple[float, ...] | None = None
    n_partials: int = 12
    rolloff: float = 1.0
    even_gain: float = 1.0
    inharmonicity: float = 0.0
    pluck_position: tuple[float, float] | None = None
    envelope: Literal["adsr", "decay"] = "adsr"
    attack: float = 0.01
    decay: float = 0.1
    sustain: float = 0.8
    release: float = 0.1
    decay_time: float = 1.0
    decay_pitch_exponent: float = 0.0
    partial_damping: float = 0.0
    voices: int = 1
    voice_detune_cents: float = 0.0
    vibrato_rate: float = 0.0
    vibrato_cents: float = 0.0
    vibrato_delay: float = 0.0
    tremolo_rate: float = 0.0
    tremolo_depth: float = 0.0
    attack_noise: float = 0.0
    attack_noise_band: tuple[float, float] = (1000.0, 6000.0)
    attack_noise_time: float = 0.01
    velocity_brightness: float = 0.5
    gain: float = 1.0


INSTRUMENTS: dict[str, Instrument] = {
    inst.name: inst
    for inst in (
        Instrument("piano", n_partials=16, rolloff=1.1, inharmonicity=2e-4, envelope="decay", attack=0.003,
                   release=0.15, decay_time=1.6, decay_pitch_exponent=0.6, partial_damping=0.35,
                   attack_noise=0.06, attack_noise_band=(400.0, 4000.0), attack_noise_time=0.008,
                   velocity_brightness=0.9),
        Instrument("epiano", partial_ratios=(1.0, 2.0, 3.0, 4.0, 7.1), partial_amps=(1.0, 0.35, 0.12, 0.05, 0.12),
                   envelope="decay", attack=0.002, release=0.12, decay_time=1.8, decay_pitch_exponent=0.4,
                   partial_damping=0.9, tremolo_rate=4.5, tremolo_depth=0.25, velocity_brightness=0.6),
        Instrument("pluck", n_partials=14, rolloff=0.9, inharmonicity=5e-5, pluck_position=(0.08, 0.25),
                   envelope="decay", attack=0.002, release=0.08, decay_time=0.8, decay_pitch_exponent=0.5,
                   partial_damping=0.5, attack_noise=0.08, attack_noise_band=(1500.0, 6000.0),
                   attack_noise_time=0.005, velocity_brightness=0.7),
        Instrument("organ", partial_ratios=(0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0),
                   partial_amps=(0.5, 1.0, 0.45, 0.7, 0.4, 0.35, 0.2, 0.15), attack=0.008, decay=0.05,
                   sustain=0.9, release=0.06, vibrato_rate=6.5, vibrato_cents=4.0, tremolo_rate=6.5,
                   tremolo_depth=0.1, attack_noise=0.03, attack_noise_band=(2000.0, 8000.0),
                   attack_noise_time=0.004, velocity_brightness=0.0, gain=0.8),
        Instrument("pad", n_partials=12, rolloff=1.3, attack=0.35, decay=0.4, sustain=0.75, release=0.5, voices=3,
                   voice_detune_cents=18.0, vibrato_rate=0.4, vibrato_cents=3.0, velocity_brightness=0.3,
                   gain=0.9),
        Instrument("strings", n_partials=14, rolloff=1.0, attack=0.12, decay=0.2, sustain=0.85, release=0.25,
                   voices=2, voice_detune_cents=8.0, vibrato_rate=5.5, vibrato_cents=10.0, vibrato_delay=0.2,
                   attack_noise=0.03, attack_noise_band=(2000.0, 7000.0), attack_noise_time=0.05),
        Instrument("brass", n_partials=12, rolloff=0.8, attack=0.05, decay=0.15, sustain=0.8, release=0.1,
                   vibrato_rate=5.0, vibrato_cents=6.0, vibrato_delay=0.3, velocity_brightness=1.2, gain=0.8),
        Instrument("reed", n_partials=12, rolloff=0.9, even_gain=0.15, attack=0.04, decay=0.1, sustain=0.85,
                   release=0.08, vibrato_rate=4.5, vibrato_cents=5.0, vibrato_delay=0.25, attack_noise=0.04,
                   attack_noise_band=(1000.0, 5000.0), attack_noise_time=0.03, gain=0.9),
        Instrument("marimba", partial_ratios=(1.0, 3.93, 9.2), partial_amps=(1.0, 0.35, 0.12), envelope="decay",
                   attack=0.001, release=0.1, decay_time=0.5, decay_pitch_exponent=0.5, partial_damping=2.0,
                   attack_noise=0.06, attack_noise_band=(200.0, 2000.0), attack_noise_time=0.004),
        Instrument("bell", partial_ratios=(0.5, 1.0, 1.19, 1.5, 2.0, 2.5, 2.66, 3.0, 4.0),
                   partial_amps=(0.35, 1.0, 0.6, 0.4, 0.5, 0.25, 0.2, 0.15, 0.1), envelope="decay", attack=0.001,
                   release=1.0, decay_time=2.5, decay_pitch_exponent=0.3, partial_damping=0.35,
                   attack_noise=0.04, attack_noise_band=(2000.0, 8000.0), attack_noise_time=0.003,
                   velocity_brightness=0.4, gain=0.8),
        Instrument("bass", n_partials=10, rolloff=1.6, even_gain=0.8, pluck_position=(0.15, 0.3), envelope="decay",
                   attack=0.003, release=0.07, decay_time=1.0, partial_damping=0.6, attack_noise=0.03,
                   attack_noise_band=(300.0, 2000.0), attack_noise_time=0.006, velocity_brightness=0.6),
    )
}

DRUMS: tuple[str, ...] = ("kick", "snare", "hat", "open_hat", "tom")


@dataclass(frozen=True)
class NoteEvent:
    """One note (or drum hit) of a score: instrument, MIDI pitch (fractional = detuned), time, velocity.

    ``duration`` is the time until note-off; the release tail rings on after it. Drum hits ignore ``midi``
    except ``tom``, which uses it as its pitch.
    """

    instrument: str
    midi: float
    start: float
    duration: float
    velocity: float = 0.8


@dataclass
class _Partials:
    """Per-note partial layout after velocity/pitch adjustments (internal)."""

    ratios: np.ndarray
    amps: np.ndarray
    integer: np.ndarray  # which ratios are whole numbers (rendered on the fast float32 path)


def _partial_layout(inst: Instrument, f0: float, velocity: float, sr: int, rng: np.random.Generator) -> _Partials:
    """Frequencies and amplitudes of a note's partials: the timbre, varied a little per note."""
    if inst.partial_ratios is not None:
        ratios = np.asarray(inst.partial_ratios, dtype=np.float64)
        if inst.partial_amps is not None:
            amps = np.asarray(inst.partial_amps, dtype=np.float64)
        else:
            amps = ratios ** -inst.rolloff
        # soft notes lose upper partials: attenuate by ratio instead of harmonic number
        amps = amps * np.maximum(ratios, 1.0) ** (-inst.velocity_brightness * (1.0 - velocity))
    else:
        k = np.arange(1, inst.n_partials + 1, dtype=np.float64)
        ratios = k * np.sqrt(1.0 + inst.inharmonicity * k**2)
        rolloff = inst.rolloff + inst.velocity_brightness * (1.0 - velocity)
        amps = k**-rolloff
        amps[1::2] *= inst.even_gain
        if inst.pluck_position is not None:
            p = rng.uniform(*inst.pluck_position)
            amps *= np.abs(np.sin(np.pi * k * p)) + 0.05
    # per-note timbre jitter of about +-1.5 dB per partial: no two notes have exactly the same spectrum
    amps = amps * 10.0 ** (rng.normal(0.0, 1.5, size=amps.shape) / 20.0)
    keep = (ratios * f0 < _NYQUIST_MARGIN * sr) & (amps >= _MIN_PARTIAL_AMP * amps.max())
    ratios, amps = ratios[keep], amps[keep]
    amps = amps / math.sqrt(float(np.sum(amps**2)) or 1.0)
    integer = np.isclose(ratios, np.round(ratios), rtol=0.0, atol=1e-9) & (ratios >= 1.0)
    return _Partials(ratios=ratios, amps=amps, integer=integer)


def _release_curve(n_on: int, n: int, n_release: int) -> np.ndarray:
    """Quadratic fade from 1 to 0 over ``n_release`` samples after note-off, evaluated for samples
    ``n_on .. n-1`` only (``n`` may cut the release short when the clip ends first)."""
    x = np.arange(n - n_on, dtype=np.float32) / np.float32(max(n_release, 1))
    return np.clip(1.0 - x, 0.0, 1.0) ** 2


def _adsr(inst: Instrument, n_on: int, n: int, n_release: int, sr: int) -> np.ndarray:
    """Sustained-instrument envelope: attack, decay to sustain, then release from wherever note-off caught it."""
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    a = max(inst.attack, 1.0 / sr)
    env = np.interp(t, [0.0, a, a + max(inst.decay, 1e-4)], [0.0, 1.0, inst.sustain]).astype(np.float32)
    if n > n_on:
        env[n_on:] = env[n_on - 1] * _release_curve(n_on, n, n_release)
    return env


def _release_gate(n_on: int, n: int, n_release: int) -> np.ndarray:
    """Note-off damping for struck/plucked notes: 1 while held, then the release fade."""
    gate = np.ones(n, dtype=np.float32)
    if n > n_on:
        gate[n_on:] = _release_curve(n_on, n, n_release)
    return gate


def fast_fft_length(n: int) -> int:
    """Smallest ``2^a 3^b 5^c >= n``: FFTs of such lengths are fast, and they pad far less than a power of two."""
    best = 1 << max(int(n - 1).bit_length(), 0)
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def bandpass_noise(n: int, sr: int, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """White noise band-limited to ``[low, high]`` Hz with smooth (raised-cosine, half-octave) band edges.

    Done in the frequency domain because the bursts are short and numpy has no IIR filter.
    """
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    size = fast_fft_length(n)  # odd burst lengths (large prime factors) are slow to FFT
    spec = np.fft.rfft(rng.standard_normal(size))
    f = np.fft.rfftfreq(size, 1.0 / sr)
    logf = np.log2(np.maximum(f, 1.0))
    lo_edge = np.clip((logf - (math.log2(max(low, 1.0)) - 0.5)) / 0.5, 0.0, 1.0)
    hi_edge = np.clip(((math.log2(high) + 0.5) - logf) / 0.5, 0.0, 1.0)
    mask = (0.5 - 0.5 * np.cos(np.pi * lo_edge)) * (0.5 - 0.5 * np.cos(np.pi * hi_edge))
    out = np.fft.irfft(spec * mask, size)[:n]
    rms = float(np.sqrt(np.mean(out**2))) or 1.0
    return (out / rms).astype(np.float32)


def render_note(inst: Instrument, midi: float, velocity: float, duration: float, sr: int,
                rng: np.random.Generator, max_samples: int | None = None) -> np.ndarray:
    """Render one note of ``inst`` (note-on at sample 0); returns float32 samples including the release tail.

    The loudness follows ``velocity ** 1.6`` (a rough dB-linear velocity curve) times ``inst.gain``.
    ``max_samples`` truncates the rendering (a note that rings past the end of a clip is not computed there).
    """
    velocity = float(np.clip(velocity, 0.05, 1.0))
    f0 = midi_to_hz(midi) * cents_to_ratio(rng.normal(0.0, 2.0))  # players are never perfectly in tune
    n_on = max(1, int(round(duration * sr)))
    n_release = int(round(inst.release * sr))
    n = n_on + n_release
    tau = 0.0
    if inst.envelope == "decay":
        tau = inst.decay_time * (261.63 / f0) ** inst.decay_pitch_exponent
        n = min(n, int(math.ceil(tau * _DECAY_CUTOFF * sr)) + 1)
        n_on = min(n_on, n)
    if max_samples is not None:
        n = max(1, min(n, max_samples))
        n_on = min(n_on, n)
    t64 = np.arange(n, dtype=np.float64) / sr
    t32 = t64.astype(np.float32)

    # pitch trajectory in cycles of f0 (float64 so the phase stays exact over seconds)
    base_cycles = f0 * t64
    if inst.vibrato_rate > 0.0 and inst.vibrato_cents > 0.0:
        depth = (cents_to_ratio(inst.vibrato_cents * rng.uniform(0.7, 1.3)) - 1.0) * f0
        rate = inst.vibrato_rate * rng.uniform(0.9, 1.1)
        ramp = np.clip((t32 - np.float32(inst.vibrato_delay)) / np.float32(0.3), 0.0, 1.0)
        # the LFO itself in float32 (its phase error is irrelevant); only its running sum needs float64
        lfo = np.sin(_TWO_PI * np.float32(rate) * t32 + np.float32(rng.uniform(0, 2 * np.pi)))
        deviation = (np.float32(depth) * ramp * lfo).astype(np.float64)
        base_cycles = base_cycles + np.cumsum(deviation) / sr

    parts = _partial_layout(inst, f0, velocity, sr, rng)
    if inst.envelope == "decay":
        taus = tau / (1.0 + inst.partial_damping * np.arange(len(parts.ratios)))
    out = np.zeros(n, dtype=np.float32)
    if inst.voices > 1:
        spread = np.linspace(-0.5, 0.5, inst.voices) * inst.voice_detune_cents
    else:
        spread = np.zeros(1)
    voice_gain = 1.0 / math.sqrt(len(spread))
    buf = np.empty(n, dtype=np.float32)  # scratch buffers reused by every partial (in-place ufuncs)
    env = np.empty(n, dtype=np.float32)
    for cents in spread:
        cycles = base_cycles * cents_to_ratio(float(cents))
        frac32 = (cycles - np.floor(cycles)).astype(np.float32)
        for j, (ratio, amp) in enumerate(zip(parts.ratios, parts.amps)):
            m = n
            if inst.envelope == "decay":
                m = min(n, int(math.ceil(taus[j] * _DECAY_CUTOFF * sr)) + 1)
            arg = buf[:m]
            if parts.integer[j]:
                # frac(k * c) == frac(k * frac(c)) for integer k: stay in fast float32
                np.multiply(frac32[:m], _TWO_PI * np.float32(ratio), out=arg)
            else:
                c = cycles[:m] * ratio
                c -= np.floor(c)
                np.multiply(c, 2.0 * math.pi, out=arg, casting="same_kind")
            arg += np.float32(rng.uniform(0.0, 2.0 * np.pi))
            np.sin(arg, out=arg)
            if inst.envelope == "decay":
                # amplitude folded into the exponent: a * exp(-t / tau) = exp(-t / tau + log a)
                e = env[:m]
                np.multiply(t32[:m], np.float32(-1.0 / taus[j]), out=e)
                e += np.float32(math.log(amp * voice_gain))
                np.exp(e, out=e)
                arg *= e
            else:
                arg *= np.float32(amp * voice_gain)
            out[:m] += arg

    if inst.envelope == "adsr":
        out *= _adsr(inst, n_on, n, n_release, sr)
    else:
        attack = np.clip(t32 / np.float32(max(inst.attack, 1.0 / sr)), 0.0, 1.0)
        out *= attack * _release_gate(n_on, n, n_release)
    if inst.tremolo_rate > 0.0 and inst.tremolo_depth > 0.0:
        lfo = np.sin(_TWO_PI * np.float32(inst.tremolo_rate) * t32 + np.float32(rng.uniform(0, 2 * np.pi)))
        out *= 1.0 - np.float32(inst.tremolo_depth) * (0.5 + 0.5 * lfo)
    if inst.attack_noise > 0.0:
        m = min(n, int(inst.attack_noise_time * 6 * sr) + 1)
        burst = bandpass_noise(m, sr, *inst.attack_noise_band, rng=rng)
        burst *= np.exp(t32[:m] * np.float32(-1.0 / inst.attack_noise_time))
        out[:m] += np.float32(inst.attack_noise * velocity) * burst
    return out * np.float32(inst.gain * velocity**1.6)


def render_drum(kind: str, velocity: float, sr: int, rng: np.random.Generator, midi: float = 45.0) -> np.ndarray:
    """One drum hit built from pitched thumps and noise bursts.

    ``kick``: a sine sweeping down from ~150 Hz plus a click; ``snare``: a ~190 Hz tone plus band-passed noise;
    ``hat``/``open_hat``: high-passed noise with a short/long decay; ``tom``: a pitched, slightly sweeping thump.
    """
    velocity = float(np.clip(velocity, 0.05, 1.0))
    if kind == "kick":
        decay = rng.uniform(0.12, 0.25)
        n = int(5.0 * decay * sr)
        t = np.arange(n, dtype=np.float64) / sr
        f_hi, f_lo = rng.uniform(120.0, 180.0), rng.uniform(42.0, 60.0)
        sweep = rng.uniform(0.02, 0.05)
        freq = f_lo + (f_hi - f_lo) * np.exp(-t / sweep)
        phase = 2.0 * np.pi * np.cumsum(freq) / sr
        body = np.sin(phase) * np.exp(-t / decay)
        click = np.zeros(n)
        m = int(0.01 * sr)
        click[:m] = bandpass_noise(m, sr, 1000.0, 6000.0, rng) * np.exp(-np.arange(m) / (0.002 * sr))
        out = body + 0.15 * click
    elif kind == "snare":
        n = int(0.3 * sr)
        t = np.arange(n, dtype=np.float64) / sr
        tone_f = rng.uniform(170.0, 220.0)
        tone = (np.sin(2 * np.pi * tone_f * t) + 0.5 * np.sin(2 * np.pi * tone_f * 1.6 * t)) * np.exp(-t / 0.05)
        noise = bandpass_noise(n, sr, 1500.0, 9000.0, rng) * np.exp(-t / rng.uniform(0.035, 0.07))
        out = 0.6 * tone + 0.3 * noise
    elif kind in ("hat", "open_hat"):
        decay = rng.uniform(0.02, 0.045) if kind == "hat" else rng.uniform(0.15, 0.3)
        n = int(decay * 6 * sr)
        t = np.arange(n, dtype=np.float64) / sr
        out = 0.3 * bandpass_noise(n, sr, 6000.0, 10000.0, rng) * np.exp(-t / decay)
    elif kind == "tom":
        n = int(0.9 * sr)
        t = np.arange(n, dtype=np.float64) / sr
        f = midi_to_hz(midi)
        freq = f * (1.0 + 0.3 * np.exp(-t / 0.03))
        out = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / 0.18)
        out += 0.1 * bandpass_noise(n, sr, 500.0, 4000.0, rng) * np.exp(-t / 0.03)
    else:
        raise ValueError(f"unknown drum {kind!r}; known: {', '.join(DRUMS)}")
    fade = min(len(out), int(0.01 * sr))  # the tails are cut at -40 dB or so: fade them, no click
    out[len(out) - fade:] *= np.linspace(1.0, 0.0, fade)
    return (out * velocity**1.6).astype(np.float32)


def render_events(events: Sequence[NoteEvent], seconds: float, sr: int, rng: np.random.Generator,
                  gains: dict[str, float] | None = None) -> np.ndarray:
    """Mix a score into a buffer of ``seconds``; events may start before 0 (a pre-roll) or ring past the end.

    ``gains`` optionally scales each instrument (linear), e.g. to balance a multi-instrument arrangement.
    """
    n = int(round(seconds * sr))
    out = np.zeros(n, dtype=np.float32)
    for ev in events:
        start = int(round(ev.start * sr))
        if start >= n:
            continue
        if ev.instrument in DRUMS:
            if start < -int(1.5 * sr):
                continue  # a hit this far before the clip has died out (the longest, a kick, lasts 1.25 s)
            sig = render_drum(ev.instrument, ev.velocity, sr, rng, midi=ev.midi)
        elif ev.instrument in INSTRUMENTS:
            inst = INSTRUMENTS[ev.instrument]
            if start + int((ev.duration + inst.release) * sr) <= 0:
                continue
            sig = render_note(inst, ev.midi, ev.velocity, ev.duration, sr, rng, max_samples=n - start)
        else:
            raise ValueError(f"unknown instrument {ev.instrument!r}")
        if gains is not None:
            sig = sig * np.float32(gains.get(ev.instrument, 1.0))
        lo = max(start, 0)
        hi = min(start + len(sig), n)
        if hi > lo:
            out[lo:hi] += sig[lo - start:hi - start]
    return out


def normalise(x: np.ndarray, peak_db: float = -1.0) -> np.ndarray:
    """Scale to a peak of ``peak_db`` dBFS, leaving headroom so 16-bit writing never clips."""
    if peak_db > 0.0:
        raise ValueError("peak_db must be <= 0 dBFS")
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        raise ValueError("cannot normalise a silent signal")
    return (x * np.float32(10.0 ** (peak_db / 20.0) / peak)).astype(np.float32)


def master(x: np.ndarray, sr: int, rng: np.random.Generator, *, reverb_rt60: tuple[float, float] = (0.15, 0.9),
           reverb_wet: tuple[float, float] = (0.05, 0.25), tilt_db_per_octave: float = 1.5,
           snr_db: tuple[float, float] = (35.0, 50.0), peak_db: tuple[float, float] = (-6.0, -1.0)) -> np.ndarray:
    """Turn a dry mix into a "recording": room reverb, random tilt EQ, noise floor, fades, normalisation.

    Reverb and EQ are applied in one FFT (convolution with an exponentially decaying noise impulse response,
    cropped to the clip); the noise floor is pink noise at ``snr_db`` below the signal RMS, so silence between
    notes is never digital zero; the peak level is drawn from ``peak_db`` so levels vary between clips.
    """
    n = len(x)
    rt60 = rng.uniform(*reverb_rt60)
    ir_len = int(rt60 * sr)
    t_ir = np.arange(ir_len) / sr
    ir = rng.standard_normal(ir_len) * np.exp(-t_ir * (6.91 / rt60))
    ir[: int(0.01 * sr)] = 0.0  # pre-delay: the early part is the dry sound
    ir /= float(np.sqrt(np.sum(ir**2))) or 1.0
    wet = rng.uniform(*reverb_wet)
    size = fast_fft_length(n + ir_len)
    spec = np.fft.rfft(x, size)
    f = np.fft.rfftfreq(size, 1.0 / sr)
    tilt = rng.uniform(-tilt_db_per_octave, tilt_db_per_octave)
    eq = 10.0 ** (tilt * np.log2(np.maximum(f, 20.0) / 1000.0) / 20.0)
    eq *= 1.0 / (1.0 + (30.0 / np.maximum(f, 1.0)) ** 4)  # 30 Hz high-pass: no DC, no rumble
    spec = spec * eq * (1.0 + wet * np.fft.rfft(ir, size))

    # Noise floor added in the same spectrum (saves two FFTs per clip). Its level is set from the signal
    # energy by Parseval (the reverb tail past the clip end counts too; irrelevant at a random SNR).
    two_sided = np.full(len(spec), 2.0)
    two_sided[0] = 1.0
    if size % 2 == 0:
        two_sided[-1] = 1.0
    rms = math.sqrt(float(np.sum(two_sided * np.abs(spec) ** 2)) / size / n)
    if rms == 0.0:
        raise ValueError("cannot master a silent mix")
    shape = np.zeros(len(spec))
    shape[1:] = 1.0 / np.sqrt(f[1:])  # 1/f power: pink
    noise = (rng.standard_normal(len(spec)) + 1j * rng.standard_normal(len(spec))) * np.sqrt(size / 2.0) * shape
    noise_rms = math.sqrt(float(np.sum(two_sided * shape**2)) / size)
    snr = rng.uniform(*snr_db)
    spec = spec + noise * (rms * 10.0 ** (-snr / 20.0) / noise_rms)
    y = np.fft.irfft(spec, size)[:n].astype(np.float32)

    fade_in, fade_out = min(n, int(0.002 * sr)), min(n, int(0.01 * sr))
    y[:fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=np.float32)
    y[n - fade_out:] *= np.linspace(1.0, 0.0, fade_out, dtype=np.float32)
    return normalise(y, peak_db=rng.uniform(*peak_db))
