"""The one interface every encoder implements.

Kept as small as HEAR's API: a few attributes describing the model, one method that maps a batch of waveforms
to *all* hidden states in one forward pass, and an identity used to key the feature cache. Anything that fits
behind this (a transformer, a CNN, a hand-crafted feature) can be probed by the suite.
"""
from __future__ import annotations

import abc
import functools
from typing import Any, Callable

import torch


class Encoder(torch.nn.Module, abc.ABC):
    """A frozen audio encoder exposing every layer.

    Attributes (set by subclasses):
        name: registry name, e.g. ``mert-v1-95m``.
        sample_rate: rate (Hz) the waveforms passed to :meth:`hidden_states` must have.
        num_layers: number of layers after the input embedding; ``hidden_states`` returns ``num_layers + 1``.
        dim: feature width of every hidden state (narrower layers are zero-padded to it).
        frame_rate: hidden-state frames per second of audio.
        context_seconds: the audio length the model was trained on; the default window length.
        min_samples: the shortest input that yields one frame (the receptive field).
        frame_level: whether :meth:`hidden_states` returns per-frame states that frame-level tasks (beats) can
            probe; an encoder that only yields one clip summary sets it to False and the runner refuses to pair it
            with a frame-level task before any work. Every built-in encoder returns frames.
        input_normalization_scope: what the encoder's waveform z-normalisation covers: ``None`` (it has none, or
            it is off), ``"window"`` (:meth:`hidden_states` normalises each item itself) or ``"file"`` (the caller
            normalises each whole decoded file once, see :func:`file_normalization_eps`, and calls
            :func:`window_forward`'s function on its windows).
    """

    name: str
    sample_rate: int
    num_layers: int
    dim: int
    frame_rate: float
    context_seconds: float
    min_samples: int
    frame_level: bool = True
    input_normalization_scope: str | None = None

    @property
    def num_hidden_states(self) -> int:
        return self.num_layers + 1

    @property
    def device(self) -> torch.device:
        """Where the encoder computes (its first parameter or buffer; CPU for parameter-free encoders)."""
        for tensor in (*self.parameters(), *self.buffers()):
            return tensor.device
        return torch.device("cpu")

    @abc.abstractmethod
    def hidden_states(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run one forward pass and return every layer.

        Args:
            waveforms: ``[batch, samples]`` float mono audio at :attr:`sample_rate`, right-padded with zeros.
            lengths: ``[batch]`` valid samples per item; ``None`` means no padding.

        Returns:
            ``(states, frame_lengths)``: ``states`` is ``[num_layers + 1, batch, frames, dim]`` (float32 unless the
            encoder runs in half precision) and ``frame_lengths`` is ``[batch]`` valid frames per item.
        """

    @abc.abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON-serialisable description that changes whenever the features would change.

        Includes the registry name and the checkpoint's revision or content hash; used in run records and as part
        of the feature-cache key.
        """


def file_normalization_eps(encoder: Encoder) -> float | None:
    """The variance floor when ``encoder`` needs each whole file z-normalised by its caller, else None.

    ``model.normalize_scope=file`` with normalisation on (MARBLE v1): the statistics are those of the whole decoded
    (and cropped) file, which no single window holds, so the caller normalises before windowing, with
    :func:`benchmark.audio.zero_mean_unit_var` at this eps. A plain float because the extractor's DataLoader
    workers do it, and they must not be handed the encoder (its model would be pickled into every worker).
    """
    if getattr(encoder, "input_normalization_scope", None) != "file":
        return None
    return float(getattr(encoder, "input_normalization_eps"))


def window_forward(encoder: Encoder) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """``encoder.hidden_states`` as a caller that normalised every file as :func:`file_normalization_eps` asks
    calls it on the windows.

    A file-scope encoder gets ``prenormalized=True`` (it refuses windows without it, so a caller that forgot the
    file step fails instead of encoding raw audio); every other encoder is called as it always was (their
    signatures have no such flag).
    """
    if file_normalization_eps(encoder) is None:
        return encoder.hidden_states
    return functools.partial(encoder.hidden_states, prenormalized=True)
