"""A tiny test encoder whose layer ``planted`` carries the music (a chroma) and whose other layers are noise.

A layer sweep over it must select the planted layer; it also counts its forward passes, so tests can prove
that a warm cache never runs the encoder.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from benchmark.encoders.base import Encoder


class PlantedEncoder(Encoder):
    name = "planted"
    sample_rate = 16000
    num_layers = 4
    dim = 16
    frame_rate = 20.0
    context_seconds = 1.0
    min_samples = 1600

    def __init__(self, planted: int = 2) -> None:
        super().__init__()
        self.planted = planted
        self.calls = 0
        freqs = np.fft.rfftfreq(1600, 1 / self.sample_rate)
        valid = (freqs > 60) & (freqs < 4000)
        pitch_class = np.zeros(len(freqs), dtype=int)
        pitch_class[valid] = np.round(12 * np.log2(freqs[valid] / 261.63)).astype(int) % 12
        self._bins = np.zeros((len(freqs), self.dim), np.float32)
        self._bins[np.nonzero(valid)[0], pitch_class[valid]] = 1.0

    def hidden_states(self, waveforms, lengths=None):
        self.calls += 1
        audio = waveforms.numpy()
        B, N = audio.shape
        T = max(1, (N - 1600) // 800 + 1)
        states = np.zeros((self.num_layers + 1, B, T, self.dim), np.float32)
        for b in range(B):
            rng = np.random.default_rng(int(hashlib.sha1(audio[b].tobytes()).hexdigest()[:8], 16))
            states[:, b] = rng.standard_normal((self.num_layers + 1, T, self.dim))
            frames = np.stack([audio[b, t * 800:t * 800 + 1600] for t in range(T)])
            chroma = np.abs(np.fft.rfft(frames * np.hanning(1600), axis=1)) @ self._bins
            states[self.planted, b] = chroma / (chroma.max(axis=1, keepdims=True) + 1e-9)
        return torch.from_numpy(states), torch.full((B,), T)

    def identity(self):
        return {"name": self.name, "planted": self.planted}
