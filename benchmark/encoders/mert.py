"""The five m-a-p music encoders (MERT-v1-95M/330M, MERT-v0, MERT-v0-public, music2vec-v1), loaded natively.

The official MERT repositories ship custom model code (``modeling_MERT.py``) that only runs on old transformers
releases and needs ``trust_remote_code``. For every released checkpoint that code computes exactly what
transformers' own ``HubertModel`` computes (the CQT branch and the deepnorm encoder are switched off in all of
them), and music2vec-v1 is a plain ``Data2VecAudioModel``. So this module reads the official ``config.json``,
translates it into a stock transformers config, builds the stock model and loads the official weights with a
strict name/shape check. No code from the model repositories is ever executed.

One builder (kind ``mert``) covers all five models, pretrained or as seeded random-init controls of the same
full-size architecture (``benchmark/encoders/arch/*.json``).
"""
from __future__ import annotations

import contextlib
import json
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from benchmark.encoders.base import Encoder
from benchmark.encoders.hf_snapshot import (
    Snapshot,
    bytes_sha256,
    file_sha256,
    hub_snapshot,
    is_commit_hash,
    local_snapshot,
    unsafe_weights_error,
)
from benchmark.encoders.registry import register_encoder
from benchmark.errors import ConfigError
from benchmark.schema import ModelSpec, check_normalize_scope

log = logging.getLogger(__name__)

ARCH_DIR = Path(__file__).with_name("arch")

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

# The variance floor of transformers' Wav2Vec2FeatureExtractor (zero_mean_unit_var_norm), which the m-a-p
# preprocessor_config.json files select; matching it keeps do_normalize=True bit-compatible with the processor.
_NORM_EPS = 1e-7

# --- config.json keys, classified -------------------------------------------------------------------------
# Keys describing where the file came from; they do not change the computation.
_METADATA_KEYS = frozenset(
    {"_name_or_path", "architectures", "auto_map", "model_type", "transformers_version", "torch_dtype", "dtype",
     "tokenizer_class", "gradient_checkpointing"}
)
# Training-time keys of old transformers / fairseq releases that current configs no longer have. They only steer
# dropout or SpecAugment masking, which are off in eval mode.
_LEGACY_TRAINING_KEYS = frozenset(
    {"mask_channel_length", "mask_channel_min_space", "mask_channel_other", "mask_channel_prob",
     "mask_channel_selection", "mask_time_min_space", "mask_time_other", "mask_time_selection",
     "hidden_dropout_prob", "feat_extract_dropout"}
)
# Keys shared by HubertConfig and Data2VecAudioConfig, passed through unchanged. The mask_* probabilities matter
# even at inference: they decide whether the model owns a ``masked_spec_embed`` parameter (a checkpoint key).
_COMMON_MODEL_KEYS = frozenset(
    {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
     "hidden_dropout", "activation_dropout", "attention_dropout", "feat_proj_dropout", "final_dropout",
     "layerdrop", "initializer_range", "layer_norm_eps", "feat_extract_activation", "conv_dim", "conv_stride",
     "conv_kernel", "conv_bias", "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "mask_time_prob",
     "mask_time_length", "mask_time_min_masks", "mask_feature_prob", "mask_feature_length",
     "mask_feature_min_masks", "ctc_loss_reduction", "ctc_zero_infinity", "use_weighted_layer_sum",
     "classifier_proj_size", "pad_token_id", "bos_token_id", "eos_token_id", "apply_spec_augment"}
)
_HUBERT_KEYS = _COMMON_MODEL_KEYS | {"feat_extract_norm", "feat_proj_layer_norm", "do_stable_layer_norm",
                                     "conv_pos_batch_norm"}
_DATA2VEC_KEYS = _COMMON_MODEL_KEYS | {"conv_pos_kernel_size", "tdnn_dim", "tdnn_kernel", "tdnn_dilation",
                                       "xvector_output_dim", "add_adapter", "adapter_kernel_size", "adapter_stride",
                                       "num_adapter_layers", "output_hidden_size"}
# Options of the m-a-p MERTConfig that stock HubertConfig lacks; each is checked in _translate_mert.
_MERT_ONLY_KEYS = frozenset(
    {"attention_relax", "deepnorm", "feature_extractor_cqt", "feature_extractor_cqt_bins", "sample_rate"}
)


def _translate_mert(raw: Mapping[str, Any]) -> dict[str, Any]:
    """HubertConfig kwargs equivalent to an official MERT ``config.json``.

    Refuses what stock HubertModel cannot reproduce instead of silently computing something else.
    """
    if raw.get("feature_extractor_cqt", False):
        raise ConfigError(
            "config.json sets feature_extractor_cqt: true (the CQT input branch of MERT). No released m-a-p "
            "checkpoint uses it and the native loader does not implement it."
        )
    if raw.get("deepnorm", False):
        raise ConfigError(
            "config.json sets deepnorm: true (MERT's DeepNorm encoder). No released m-a-p checkpoint uses it and "
            "the native loader does not implement it."
        )
    relax = raw.get("attention_relax", -1.0)
    if not isinstance(relax, (int, float)) or isinstance(relax, bool):
        raise ConfigError(f"config.json: attention_relax must be a number, got {relax!r}")
    # attention_relax is accepted with any value: only the (refused) deepnorm encoder reads it, and the
    # operation it selects is softmax-invariant anyway.
    return _pass_through(raw, _HUBERT_KEYS, _MERT_ONLY_KEYS, family="MERT/HuBERT")


def _translate_data2vec(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Data2VecAudioConfig kwargs for a music2vec ``config.json`` (already in transformers' own format)."""
    if raw.get("add_adapter", False):
        raise ConfigError(
            "config.json sets add_adapter: true; the adapter changes the frame rate and is not part of music2vec, "
            "so the native loader refuses it."
        )
    return _pass_through(raw, _DATA2VEC_KEYS, frozenset(), family="data2vec-audio")


def _pass_through(
    raw: Mapping[str, Any], model_keys: frozenset[str], extra_known: frozenset[str], *, family: str
) -> dict[str, Any]:
    """Copy the model keys, accept known no-op keys, and fail on anything not understood.

    Failing on unknown keys is deliberate: a key this loader has never seen could change the computation, and
    silently ignoring it would produce wrong features that no test notices.
    """
    unknown = sorted(
        k for k in raw
        if k not in model_keys and k not in extra_known and k not in _METADATA_KEYS
        and k not in _LEGACY_TRAINING_KEYS and k != "num_feat_extract_layers"
    )
    if unknown:
        raise ConfigError(
            f"config.json ({family}) has keys the native loader does not understand: {', '.join(unknown)}. "
            "Refusing to guess what they do."
        )
    kwargs = {k: raw[k] for k in model_keys if k in raw}
    conv_dim = kwargs.get("conv_dim")
    if conv_dim is not None:
        n = raw.get("num_feat_extract_layers", len(conv_dim))
        lens = {len(conv_dim), len(kwargs.get("conv_kernel", conv_dim)), len(kwargs.get("conv_stride", conv_dim)), n}
        if len(lens) != 1:
            raise ConfigError(
                "config.json: conv_dim, conv_kernel, conv_stride and num_feat_extract_layers disagree on the number "
                "of feature-extractor convolutions."
            )
    return kwargs


def _model_family(raw: Mapping[str, Any]) -> str:
    """``"hubert"`` for MERT configs, ``"data2vec"`` for music2vec, from model_type (or architectures)."""
    model_type = raw.get("model_type")
    archs = raw.get("architectures") or []
    if model_type in ("mert_model", "hubert") or (model_type is None and any("MERT" in a or "Hubert" in a
                                                                                for a in archs)):
        return "hubert"
    if model_type == "data2vec-audio" or (model_type is None and any("Data2VecAudio" in a for a in archs)):
        return "data2vec"
    raise ConfigError(
        f"config.json has model_type {model_type!r} (architectures {archs}); the mert encoder kind loads only "
        "MERT ('mert_model') and music2vec ('data2vec-audio') checkpoints."
    )


def build_hf_model(raw_config: Mapping[str, Any], *, init_seed: int | None = None) -> torch.nn.Module:
    """Build the stock transformers model that an official m-a-p ``config.json`` describes.

    Args:
        raw_config: the parsed ``config.json``.
        init_seed: ``None`` builds without running weight initialisation (every tensor is then overwritten by
            the strict checkpoint load); an integer runs transformers' own initialisation under
            ``torch.manual_seed(init_seed)``, the random-init control.
    """
    from transformers import Data2VecAudioConfig, Data2VecAudioModel, HubertConfig, HubertModel

    family = _model_family(raw_config)
    if family == "hubert":
        config_cls, model_cls, kwargs = HubertConfig, HubertModel, _translate_mert(raw_config)
    else:
        config_cls, model_cls, kwargs = Data2VecAudioConfig, Data2VecAudioModel, _translate_data2vec(raw_config)
    config = config_cls(**kwargs)
    attn = "sdpa" if getattr(model_cls, "_supports_sdpa", False) else "eager"

    if init_seed is None:
        ctx: contextlib.AbstractContextManager[Any] = _no_init_weights()
    else:
        ctx = _seeded(int(init_seed))
    with ctx:
        model = model_cls._from_config(config, attn_implementation=attn)
    model.eval()
    model.requires_grad_(False)
    return model


@contextlib.contextmanager
def _seeded(seed: int):
    """Seed torch's CPU generator for the block without disturbing the caller's random stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _no_init_weights() -> contextlib.AbstractContextManager[Any]:
    """transformers' switch that skips weight init (saves seconds on a 330M model); a no-op if unavailable."""
    try:
        from transformers.initialization import no_init_weights  # transformers >= 5
    except ImportError:
        try:
            from transformers.modeling_utils import no_init_weights  # transformers 4.x
        except ImportError:
            return contextlib.nullcontext()
    return no_init_weights()


# --- weights ----------------------------------------------------------------------------------------------
_WEIGHT_NORM_NEW = ("parametrizations.weight.original0", "parametrizations.weight.original1")
_WEIGHT_NORM_OLD = ("weight_g", "weight_v")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a weight file without executing pickled code (safetensors, or torch.load with weights_only).

    A pickle that names code or non-tensor objects is refused with :class:`UnsafeWeightsError`, whose message
    says what to do instead (torch's own text would advise loading it unsafely).
    """
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise unsafe_weights_error(path, exc) from None  # torch's advice must not reach the user, not even chained
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: expected a flat dict of tensors (a model state_dict)")
    return dict(state)


def _rename_weight_norm(state: dict[str, torch.Tensor], model_keys: set[str]) -> dict[str, torch.Tensor]:
    """Map weight-norm tensor names between the legacy and the parametrization spelling the model uses.

    Official MERT ``.bin`` files were written with ``torch.nn.utils.weight_norm`` (``conv.weight_g`` /
    ``conv.weight_v``); current transformers builds the positional conv with
    ``torch.nn.utils.parametrizations.weight_norm`` (``conv.parametrizations.weight.original0`` / ``original1``).
    Same tensors, g first and v second, so only the names change.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new_key = key
        for old, new in ((_WEIGHT_NORM_OLD[0], _WEIGHT_NORM_NEW[0]), (_WEIGHT_NORM_OLD[1], _WEIGHT_NORM_NEW[1])):
            if key.endswith("." + old) and key not in model_keys:
                candidate = key[: -len(old)] + new
                if candidate in model_keys:
                    new_key = candidate
            elif key.endswith("." + new) and key not in model_keys:
                candidate = key[: -len(new)] + old
                if candidate in model_keys:
                    new_key = candidate
        if new_key in out:
            raise ConfigError(f"checkpoint holds both spellings of weight-norm tensor {new_key!r}")
        out[new_key] = value
    return out


def load_weights_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load ``state`` into ``model``, failing on any missing, unexpected or wrongly shaped tensor.

    The error names the tensors, so a checkpoint of another size or architecture is caught at build time, not
    discovered later as bad probe scores.
    """
    expected = model.state_dict()
    state = _rename_weight_norm(state, set(expected))
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    problems = []
    if missing:
        problems.append("missing tensors: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected tensors: " + ", ".join(unexpected))
    if wrong:
        problems.append("wrong shapes: " + "; ".join(wrong))
    if problems:
        raise ConfigError(f"weights in {source} do not fit the architecture in config.json: " + " | ".join(problems))
    non_float = [k for k, v in state.items() if not v.is_floating_point()]
    if non_float:
        raise ConfigError(f"weights in {source}: non-floating-point tensors {', '.join(sorted(non_float))}")
    model.load_state_dict(state, strict=True)


# --- the encoder ------------------------------------------------------------------------------------------
def _receptive_field_and_hop(kernels: list[int], strides: list[int]) -> tuple[int, int]:
    """Receptive field (samples for one frame) and hop of a stack of unpadded convolutions."""
    field, jump = 1, 1
    for k, s in zip(kernels, strides):
        field += (k - 1) * jump
        jump *= s
    return field, jump


class MertEncoder(Encoder):
    """A frozen MERT / music2vec model exposing the embedding output and every transformer layer.

    ``hidden_states`` returns ``num_layers + 1`` states: the positional-conv output (after the encoder
    LayerNorm for post-LN models, raw for the pre-LN 330M), then each layer. For the pre-LN MERT-v1-330M the
    last state is the output of the final encoder LayerNorm, as in the official code, not the raw residual.
    """

    def __init__(
        self,
        *,
        name: str,
        model: torch.nn.Module,
        preprocessor: Mapping[str, Any],
        context_seconds: float,
        dtype: str,
        identity_base: dict[str, Any],
        weights_path: Path | None,
        normalize: bool | None = None,
        normalize_scope: str = "window",
    ) -> None:
        super().__init__()
        self.name = name
        self.model = model
        cfg = model.config
        self.sample_rate = int(preprocessor["sampling_rate"])
        self.do_normalize = input_normalization(preprocessor, normalize)
        self.normalize_scope = check_normalize_scope(normalize_scope)
        self.num_layers = int(cfg.num_hidden_layers)
        self.dim = int(cfg.hidden_size)
        self.min_samples, self.hop = _receptive_field_and_hop(list(cfg.conv_kernel), list(cfg.conv_stride))
        self.frame_rate = self.sample_rate / self.hop
        self.context_seconds = float(context_seconds)
        self.dtype_name = dtype
        self._identity_base = dict(identity_base)
        self.weights_path = weights_path

    # ---- preprocessing ----
    input_normalization_eps = _NORM_EPS

    @property
    def input_normalization_scope(self) -> str | None:  # type: ignore[override]
        """``None`` when the input is not normalised, else ``model.normalize_scope`` (``window`` | ``file``).

        The extractor and ``embed`` read it (through :func:`~benchmark.encoders.base.file_normalization_eps`) to
        decide whether they normalise each whole file themselves; with normalisation off the scope changes nothing.
        """
        return self.normalize_scope if self.do_normalize else None

    def normalize(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Zero-mean, unit-variance per item over its valid samples; padding stays exactly zero.

        Mirrors ``Wav2Vec2FeatureExtractor(do_normalize=True)`` with an attention mask: statistics of the valid
        part only, population variance, ``sqrt(var + 1e-7)``. Computed in float64 so the result does not depend
        on the batch's compute dtype.

        Each item is one encoder window, so the statistics are per window (``normalize_scope=window``). MARBLE v1
        instead normalises each file's whole (cropped) waveform once, before cutting it into windows
        (``normalize_scope=file``: the caller does it, see :meth:`hidden_states`): with several windows per file the
        two differ by each window's own gain and offset (identical for a clip that is a single window).
        """
        x = waveforms.to(torch.float64)
        n = x.shape[-1]
        valid = torch.arange(n, device=x.device)[None, :] < lengths.to(x.device)[:, None]
        count = lengths.to(x.device, torch.float64).clamp(min=1)[:, None]
        xv = torch.where(valid, x, torch.zeros((), dtype=x.dtype, device=x.device))
        mean = xv.sum(-1, keepdim=True) / count
        var = (torch.where(valid, x - mean, torch.zeros((), dtype=x.dtype, device=x.device)) ** 2).sum(
            -1, keepdim=True
        ) / count
        out = (x - mean) / torch.sqrt(var + _NORM_EPS)
        out = torch.where(valid, out, torch.zeros((), dtype=x.dtype, device=x.device))
        return out.to(waveforms.dtype if waveforms.is_floating_point() else torch.float32)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid frames per item: the model's own conv output-length formula."""
        return self.model._get_feat_extract_output_lengths(lengths.to(torch.long)).to(torch.long)

    # ---- forward ----
    def hidden_states(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None, *, prenormalized: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass returning ``([L+1, B, T, D] float32, [B] valid frames)``.

        ``prenormalized``: the items are windows of files the caller has z-normalised whole
        (:func:`~benchmark.encoders.base.file_normalization_eps`). It must be True exactly when the scope in effect
        is ``file``: a file-scope encoder cannot normalise a file it sees only window by window, and silently
        encoding raw audio (or normalising twice) would give features that disagree with the identity.
        """
        self._check_prenormalized(prenormalized)
        if waveforms.dim() != 2:
            raise ValueError(f"waveforms must be [batch, samples], got shape {tuple(waveforms.shape)}")
        batch, n = waveforms.shape
        param = next(self.model.parameters())
        device, dtype = param.device, param.dtype
        if lengths is None:
            lengths = torch.full((batch,), n, dtype=torch.long)
        lengths = lengths.detach().to("cpu", torch.long)
        if lengths.shape != (batch,):
            raise ValueError(f"lengths must have shape [{batch}], got {tuple(lengths.shape)}")
        if int(lengths.max()) > n or int(lengths.min()) < self.min_samples:
            raise ValueError(
                f"{self.name}: every item needs between {self.min_samples} (one frame) and {n} valid samples, "
                f"got lengths {lengths.tolist()}"
            )
        with torch.inference_mode():
            # Normalise on the CPU in float64 (not every accelerator has float64), then move.
            x = waveforms.detach().to("cpu", torch.float32)
            if self.input_normalization_scope == "window":
                x = self.normalize(x, lengths)
            padded = bool((lengths < n).any())
            mask = None
            if padded:
                mask = (torch.arange(n)[None, :] < lengths[:, None]).to(device=device, dtype=torch.long)
            out = self.model(
                x.to(device=device, dtype=dtype), attention_mask=mask, output_hidden_states=True, return_dict=True
            )
            states = list(out.hidden_states)
            if len(states) != self.num_layers + 1:
                raise RuntimeError(
                    f"{self.name}: the model returned {len(states)} hidden states, expected {self.num_layers + 1}"
                )
            # Make the last entry the model output on every transformers version: for pre-LN models this is the
            # final LayerNorm output (the official MERT convention); for post-LN models it is the same tensor.
            states[-1] = out.last_hidden_state
            stacked = torch.stack(states, dim=0).to(torch.float32)
            frames = self.frame_lengths(lengths).to(stacked.device)
            frames = frames.clamp(max=stacked.shape[2])
        return stacked, frames

    def _check_prenormalized(self, prenormalized: bool) -> None:
        """Refuse a call whose input does not match the normalisation scope (see :meth:`hidden_states`)."""
        scope = self.input_normalization_scope
        if scope == "file" and not prenormalized:
            raise ValueError(
                f"{self.name}: model.normalize_scope=file: each whole file must be z-normalised before it is cut "
                "into windows (benchmark.audio.zero_mean_unit_var at encoder.input_normalization_eps, as the "
                "extractor and `embed` do); then pass prenormalized=True"
            )
        if prenormalized and scope != "file":
            what = "normalises each window itself" if scope == "window" else "does not normalise its input"
            raise ValueError(f"{self.name}: prenormalized=True, but this encoder {what} (model.normalize_scope="
                             f"{self.normalize_scope}, normalisation {'on' if self.do_normalize else 'off'})")

    # ---- identity ----
    def identity(self) -> dict[str, Any]:
        """What produced this encoder's features, for the run record and the feature-cache key.

        Pretrained: ``source`` (``hub`` or ``local``), ``hub_id``, ``revision`` (what was asked for, ``None`` for
        a local folder), ``resolved_commit`` (the commit the files actually came from: the cache's
        ``snapshots/<commit>`` folder, so ``main`` is recorded as the commit it pointed at; ``None`` for a local
        folder that is not such a folder), ``weights_file``, and the sha256 of config, preprocessor config and
        weights. The weight hash is taken when the model is built, from the file that was loaded, so it
        describes those bytes even if the file is replaced later. Random init: arch, seed, config hashes and
        library versions. Always: ``name``, ``kind``, ``dtype``; ``normalize`` only when ``model.normalize`` is
        set (true or false), so that features made without the override keep their cache key; ``normalize_scope``
        (``"file"``) only when the file scope is in effect (normalisation on), for the same reason.
        """
        ident = dict(self._identity_base)
        ident["dtype"] = self.dtype_name
        return ident


# --- builder ----------------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read JSON file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def normalize_override(value: Any) -> bool | None:
    """``model.normalize`` as None (use the preprocessor config) or a bool; anything else is a ConfigError.

    Checked here too, not only by the schema: configs built in code (tests, a record's config) skip the schema,
    and a string such as ``"false"`` would otherwise count as true.
    """
    if value is None or isinstance(value, bool):
        return value
    raise ConfigError(f"model.normalize={value!r}: must be true, false or null (null = the model's own "
                      "preprocessor_config.json do_normalize)")


def input_normalization(preprocessor: Mapping[str, Any], override: bool | None) -> bool:
    """Whether waveforms are z-normalised before the model: ``override`` when set, else the preprocessor config.

    Why an override: MARBLE v1 builds its feature extractor from its own per-model flag (processor_normalize) and
    ignores the snapshot's preprocessor_config.json, so reproducing it needs the flag, not the file.
    """
    if override is not None:
        return bool(override)
    return bool(preprocessor.get("do_normalize", False))


def _check_preprocessor(pre: Mapping[str, Any], raw: Mapping[str, Any], where: str) -> None:
    """Refuse preprocessor settings this encoder does not reproduce, and rate clashes with config.json."""
    if "sampling_rate" not in pre:
        raise ConfigError(f"{where}: preprocessor_config.json has no sampling_rate")
    if int(pre.get("feature_size", 1)) != 1:
        raise ConfigError(f"{where}: feature_size {pre['feature_size']} != 1 (mono waveform input expected)")
    if float(pre.get("padding_value", 0.0)) != 0.0:
        raise ConfigError(f"{where}: padding_value {pre['padding_value']} != 0 is not supported")
    if pre.get("padding_side", "right") != "right":
        raise ConfigError(f"{where}: padding_side {pre['padding_side']!r} is not supported (right padding only)")
    if "sample_rate" in raw and int(raw["sample_rate"]) != int(pre["sampling_rate"]):
        raise ConfigError(
            f"{where}: config.json sample_rate {raw['sample_rate']} disagrees with preprocessor_config.json "
            f"sampling_rate {pre['sampling_rate']}"
        )


def _arch_files(arch: str) -> tuple[Path, Path]:
    config = ARCH_DIR / f"{arch}.json"
    pre = ARCH_DIR / f"{arch}.preprocessor_config.json"
    if not config.is_file() or not pre.is_file():
        known = sorted(p.stem for p in ARCH_DIR.glob("*.json") if not p.name.endswith(".preprocessor_config.json"))
        raise ConfigError(f"unknown model.arch {arch!r}; available: {', '.join(known)}")
    return config, pre


def _library_versions() -> dict[str, str]:
    import transformers

    return {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__}


@dataclass
class MertSpec(ModelSpec):
    """``kind: mert``: an m-a-p checkpoint from the hub (pinned revision) or a local folder, or a random init."""

    hub_id: Optional[str] = None
    revision: Optional[str] = None  # None = main
    checkpoint: Optional[str] = None  # a local snapshot folder; overrides the hub
    cache_dir: Optional[str] = None  # None = the Hugging Face cache
    random_init: bool = False
    arch: Optional[str] = None  # random init: an architecture under benchmark/encoders/arch/
    seed: int = 0  # random init's seed
    # normalize (ModelSpec): None = the snapshot's (or arch's) preprocessor_config.json do_normalize
    # normalize_scope (ModelSpec): window | file (the whole decoded file once, normalised by the extractor)


@register_encoder("mert", schema=MertSpec, dtypes=("fp32", "bf16", "fp16"))
def build_mert(model_cfg: Mapping[str, Any]) -> MertEncoder:
    """Build a MERT / music2vec encoder from a model config (see ``configs/model/mert-*.yaml``).

    Keys: ``name``, ``hub_id``, ``revision``, ``checkpoint`` (local folder, overrides the hub), ``cache_dir``
    (hub cache, optional), ``random_init`` + ``arch`` + ``seed`` (random-init control), ``dtype``
    (fp32/bf16/fp16), ``context_seconds``, ``normalize`` (null = the preprocessor config's ``do_normalize``),
    ``normalize_scope`` (``window`` | ``file``; default window).
    """
    name = str(model_cfg.get("name") or model_cfg.get("hub_id") or "mert")
    normalize = normalize_override(model_cfg.get("normalize"))
    normalize_scope = check_normalize_scope(model_cfg.get("normalize_scope", "window"))
    dtype_name = str(model_cfg.get("dtype") or "fp32")
    if dtype_name not in DTYPES:
        raise ConfigError(f"model.dtype={dtype_name!r}: choose one of {', '.join(DTYPES)}")
    context_seconds = model_cfg.get("context_seconds")
    identity: dict[str, Any] = {"name": name, "kind": "mert"}

    weights_path: Path | None
    if model_cfg.get("random_init", False):
        arch = model_cfg.get("arch")
        if not arch:
            raise ConfigError("model.random_init=true needs model.arch (a file name under benchmark/encoders/arch/)")
        seed = int(model_cfg.get("seed", 0) or 0)
        config_path, pre_path = _arch_files(str(arch))
        raw = _read_json(config_path)
        pre = _read_json(pre_path)
        _check_preprocessor(pre, raw, f"arch {arch}")
        model = build_hf_model(raw, init_seed=seed)
        weights_path = None
        identity.update(
            random_init=True,
            arch=str(arch),
            seed=seed,
            hub_id=model_cfg.get("hub_id"),
            config_sha256=bytes_sha256(config_path.read_bytes()),
            preprocessor_sha256=bytes_sha256(pre_path.read_bytes()),
            # Random weights depend on the library's init scheme and RNG, so the versions belong to the identity.
            init_library=_library_versions(),
        )
    else:
        snapshot = _resolve_snapshot(model_cfg)
        raw = _read_json(snapshot.config_path)
        pre = _read_json(snapshot.preprocessor_path)
        _check_preprocessor(pre, raw, str(snapshot.folder))
        model = build_hf_model(raw, init_seed=None)
        # Hashed now, next to the load, rather than when identity() is first asked: the record must describe the
        # bytes that were loaded, and a cache entry replaced later (another revision downloaded) must not change it.
        weights_sha256 = file_sha256(snapshot.weights_path)
        load_weights_strict(model, read_state_dict(snapshot.weights_path), source=str(snapshot.weights_path))
        weights_path = snapshot.weights_path
        identity.update(
            random_init=False,
            source=snapshot.source,
            hub_id=model_cfg.get("hub_id"),
            # The requested revision only means something when the files came from the hub (cache).
            revision=snapshot.revision,
            # What the revision resolved to (a branch such as main is recorded as its commit); None for a local
            # folder unless that folder is itself a hub-cache snapshots/<commit> folder.
            resolved_commit=snapshot.commit,
            # No local path here: the identity keys the feature cache, and a path would make it machine-specific.
            weights_file=snapshot.weights_path.name,
            weights_sha256=weights_sha256,
            config_sha256=bytes_sha256(snapshot.config_path.read_bytes()),
            preprocessor_sha256=bytes_sha256(snapshot.preprocessor_path.read_bytes()),
        )
        log.info("%s: weights %s (commit %s, sha256 %s)", name, snapshot.weights_path, snapshot.commit or "unknown",
                 weights_sha256)

    if normalize is not None:
        # Only when set: an encoder built without the key keeps the identity, and so the feature-cache key, that
        # it had before the option existed.
        identity["normalize"] = normalize
    if normalize_scope == "file" and input_normalization(pre, normalize):
        # Only when it changes the features: window is what every encoder did before the option existed, and with
        # normalisation off there is nothing whose scope could differ.
        identity["normalize_scope"] = normalize_scope
    model.to(DTYPES[dtype_name])
    if context_seconds is None:
        # The training context of the m-a-p models: 30 s crops for music2vec, 5 s for every MERT.
        context_seconds = 30.0 if _model_family(raw) == "data2vec" else 5.0
    encoder = MertEncoder(
        name=name,
        model=model,
        preprocessor=pre,
        context_seconds=float(context_seconds),
        dtype=dtype_name,
        identity_base=identity,
        weights_path=weights_path,
        normalize=normalize,
        normalize_scope=normalize_scope,
    )
    log.info(
        "built %s: %d layers x %d dims, %d Hz, %.1f frames/s, %s", name, encoder.num_layers, encoder.dim,
        encoder.sample_rate, encoder.frame_rate, dtype_name,
    )
    return encoder


def _resolve_snapshot(model_cfg: Mapping[str, Any]) -> Snapshot:
    """The snapshot a config points at: ``checkpoint`` folder if set, else the hub (cache) at ``revision``.

    A revision that is not a commit hash (``main``, a tag) is accepted, with a warning: it is the way out when a
    pinned commit is no longer on the hub, and the record stays exact because it stores the resolved commit.
    """
    hub_id = model_cfg.get("hub_id")
    checkpoint = model_cfg.get("checkpoint")
    if checkpoint:
        return local_snapshot(checkpoint, hint=str(hub_id) if hub_id else "")
    if not hub_id:
        raise ConfigError("model config needs either checkpoint (a local folder) or hub_id (a Hugging Face repo)")
    revision = str(model_cfg.get("revision") or "main")
    if not is_commit_hash(revision):
        log.warning("%s: revision %r is not a commit hash, so later runs may get other files; the commit it "
                    "resolves to is recorded as resolved_commit", hub_id, revision)
    return hub_snapshot(str(hub_id), revision, cache_dir=model_cfg.get("cache_dir"))


__all__ = ["MertEncoder", "build_mert", "build_hf_model", "load_weights_strict", "read_state_dict"]


def describe_arch(arch: str, context_seconds: float | None = None) -> dict[str, Any]:
    """Key facts of an m-a-p architecture read from its config files alone (no weights are built or loaded)."""
    config_path, pre_path = _arch_files(arch)
    raw, pre = _read_json(config_path), _read_json(pre_path)
    _, hop = _receptive_field_and_hop(list(raw["conv_kernel"]), list(raw["conv_stride"]))
    rate = int(pre["sampling_rate"])
    if context_seconds is None:
        context_seconds = 30.0 if _model_family(raw) == "data2vec" else 5.0
    return {"sample_rate": rate, "num_layers": int(raw["num_hidden_layers"]), "dim": int(raw["hidden_size"]),
            "frame_rate": rate / hop, "context_seconds": float(context_seconds)}
